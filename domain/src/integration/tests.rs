use super::*;

fn store() -> Uuid {
    Uuid::from_u128(1)
}

fn filter(patterns: &[&str]) -> EventFilter {
    EventFilter::parse(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
        .expect("valid patterns")
}

fn connection(target: Target, patterns: &[&str]) -> Connection {
    Connection {
        store_id: store(),
        target,
        endpoint_url: (target == Target::Webhook)
            .then(|| EndpointUrl::parse("https://hooks.example.com/in").expect("url")),
        event_types: filter(patterns),
        description: None,
        secret_id: Uuid::from_u128(10),
    }
}

fn enable() -> IntegrationCommand {
    IntegrationCommand::Update(IntegrationChanges {
        enabled: Some(true),
        ..Default::default()
    })
}

fn given(events: &[Event]) -> Integration {
    events.iter().fold(Integration::default(), evolve)
}

fn connected(target: Target) -> Vec<Event> {
    decide(
        &Integration::Unborn,
        &IntegrationCommand::Connect(connection(target, &[])),
    )
    .unwrap_or_default()
}

#[test]
fn a_service_connects_with_its_default_routes() {
    let events = connected(Target::Service(Service::RankPilot));
    assert!(matches!(
        &events[..],
        [Event::IntegrationConnected(e)] if e.integration.target == "rankpilot" && e.integration.event_types.is_empty()
    ));
}

#[test]
fn a_service_is_reached_at_the_platforms_address_never_at_one_the_merchant_gives() {
    let url = EndpointUrl::parse("https://merchant.example/steal").expect("url");
    let mut with_url = connection(Target::Service(Service::RankPilot), &[]);
    with_url.endpoint_url = Some(url.clone());
    assert_eq!(
        decide(&Integration::Unborn, &IntegrationCommand::Connect(with_url)),
        Err(IntegrationError::EndpointFixed)
    );
    let service = given(&connected(Target::Service(Service::RankPilot)));
    let moved = IntegrationCommand::Update(IntegrationChanges {
        endpoint_url: Some(url),
        ..Default::default()
    });
    assert_eq!(
        decide(&service, &moved),
        Err(IntegrationError::EndpointFixed)
    );
    let mut webhook = connection(Target::Webhook, &["*"]);
    webhook.endpoint_url = None;
    assert_eq!(
        decide(&Integration::Unborn, &IntegrationCommand::Connect(webhook)),
        Err(IntegrationError::EndpointRequired)
    );
}

#[test]
fn a_service_cannot_subscribe_to_what_it_is_not_routed() {
    let outcome = decide(
        &Integration::Unborn,
        &IntegrationCommand::Connect(connection(
            Target::Service(Service::RankPilot),
            &["product.updated", "order.created"],
        )),
    );
    assert_eq!(
        outcome,
        Err(IntegrationError::NotRouted {
            service: Service::RankPilot,
            pattern: "order.created".into()
        })
    );
    assert!(
        decide(
            &Integration::Unborn,
            &IntegrationCommand::Connect(connection(
                Target::Service(Service::FlowSend),
                &["order.*"]
            )),
        )
        .is_ok()
    );
}

#[test]
fn a_webhook_must_name_its_events() {
    assert_eq!(
        decide(
            &Integration::Unborn,
            &IntegrationCommand::Connect(connection(Target::Webhook, &[])),
        ),
        Err(IntegrationError::NoEventTypes)
    );
}

#[test]
fn disabling_twice_records_once_and_enabling_clears_the_reason() {
    let mut history = connected(Target::Service(Service::ShopChat));
    let state = given(&history);
    let disabled = decide(&state, &IntegrationCommand::Disable(DisableReason::Gone)).expect("ok");
    history.extend(disabled);
    let state = given(&history);
    assert!(
        matches!(&state, Integration::Existing(c) if !c.enabled && c.disabled_reason.as_deref() == Some("gone"))
    );
    assert_eq!(
        decide(
            &state,
            &IntegrationCommand::Disable(DisableReason::Merchant)
        ),
        Ok(vec![])
    );
    history.extend(decide(&state, &enable()).expect("ok"));
    assert!(
        matches!(given(&history), Integration::Existing(c) if c.enabled && c.disabled_reason.is_none())
    );
}

#[test]
fn a_rotation_keeps_the_old_secret_for_a_day() {
    let mut history = connected(Target::Service(Service::AdScale));
    let now = 1_800_000_000_000_000;
    history.extend(
        decide(
            &given(&history),
            &IntegrationCommand::RotateSecret {
                secret_id: Uuid::from_u128(11),
                now_micros: now,
            },
        )
        .expect("ok"),
    );
    let Integration::Existing(current) = given(&history) else {
        panic!("connected");
    };
    assert_eq!(current.data.secret_id, Uuid::from_u128(11));
    assert_eq!(
        current.previous_secret,
        Some(PreviousSecret {
            secret_id: Uuid::from_u128(10),
            valid_until_micros: now + 24 * 3_600_000_000
        })
    );
}

#[test]
fn an_update_that_changes_nothing_records_nothing_and_a_disconnected_one_is_gone() {
    let mut history = decide(
        &Integration::Unborn,
        &IntegrationCommand::Connect(connection(Target::Webhook, &["*"])),
    )
    .expect("connected");
    let unchanged = IntegrationChanges {
        endpoint_url: Some(EndpointUrl::parse("https://hooks.example.com/in").expect("url")),
        ..Default::default()
    };
    assert_eq!(
        decide(&given(&history), &IntegrationCommand::Update(unchanged)),
        Ok(vec![])
    );
    history.extend(
        decide(
            &given(&history),
            &IntegrationCommand::Disconnect(DisconnectReason::Merchant),
        )
        .expect("ok"),
    );
    assert_eq!(
        decide(&given(&history), &enable()),
        Err(IntegrationError::NotFound)
    );
}

#[test]
fn patterns_match_exactly_by_aggregate_or_everything() {
    assert!(filter(&["product.*"]).matches("product.variant_added"));
    assert!(!filter(&["product.*"]).matches("productx.created"));
    assert!(filter(&["*"]).matches("order.shipped"));
    assert!(!filter(&["order.created"]).matches("order.shipped"));
    for bad in [
        "product",
        "Product.created",
        "product.",
        ".created",
        "product.*.x",
        "a b.c",
    ] {
        assert!(EventPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn endpoint_urls_are_absolute_http_without_credentials() {
    for good in [
        "https://hooks.example.com/x?y=1",
        "http://127.0.0.1:8080/in",
    ] {
        assert!(EndpointUrl::parse(good).is_ok(), "{good}");
    }
    for bad in [
        "ftp://x.com/",
        "https://user:pw@x.com/",
        "/relative",
        "https://x.com/#frag",
        "not a url",
    ] {
        assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        EndpointUrl::parse("http://[::1]:9/")
            .expect("url")
            .ip_literal(),
        Some("::1".parse().expect("ip"))
    );
    assert_eq!(
        EndpointUrl::parse("https://x.com/")
            .expect("url")
            .ip_literal(),
        None
    );
}

#[test]
fn a_disconnection_records_who_asked_for_it() {
    let mut history = connected(Target::Service(Service::FlowSend));
    let disconnected = decide(
        &given(&history),
        &IntegrationCommand::Disconnect(DisconnectReason::StoreDeleted),
    );
    assert_eq!(
        disconnected,
        Ok(vec![Event::IntegrationDisconnected(
            IntegrationDisconnected {
                reason: DisconnectReason::StoreDeleted,
            }
        )])
    );
    history.extend(disconnected.expect("ok"));
    assert_eq!(
        decide(
            &given(&history),
            &IntegrationCommand::Disconnect(DisconnectReason::StoreDeleted)
        ),
        Err(IntegrationError::NotFound),
        "a second disconnection finds nothing to disconnect"
    );
}
