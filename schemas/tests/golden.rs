//! Golden fixtures: the checked-in bytes of every (event type, schema version) must keep
//! decoding to the same value, and today's encoder must still produce them. A failure
//! here means an encoding changed: add a new schema version instead of editing one.
//! `UPDATE_GOLDEN=1 cargo test -p schemas --test golden` rewrites missing fixtures only.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use schemas::{
    CATALOGUE, Event, EventMetadata, RecordedEvent,
    catalog::{
        CategoryCreated, CategoryData, CategoryDeleted, CategoryUpdated, CollectionCreated,
        CollectionData, CollectionDeleted, CollectionUpdated,
    },
    customer::{
        CustomerAccountOpened, CustomerAddressAdded, CustomerAddressRemoved,
        CustomerAddressUpdated, CustomerCreated, CustomerDefaultAddressSet, CustomerUpdated,
        CustomerWishlistAdded, CustomerWishlistRemoved,
    },
    integration::{
        DisconnectReason, IntegrationConnected, IntegrationData, IntegrationDeliveryExhausted,
        IntegrationDisabled, IntegrationDisconnected, IntegrationDisconnectedV1,
        IntegrationEnabled, IntegrationSecretRotated, IntegrationUpdated,
    },
    merchant::MerchantRegistered,
    order::{
        ItemQuantity, OrderCancelled, OrderCreated, OrderDelivered, OrderExpired, OrderLine,
        OrderNoteAdded, OrderPaid, OrderPaymentFailed, OrderRefunded, OrderShipped, OrderTotals,
    },
    pii::Sealed,
    product::{
        InventoryAdjusted, InventoryLowStock, InventoryReleased, InventoryReserved, Money,
        ProductArchived, ProductCreated, ProductData, ProductPublished, ProductUpdated, StockLine,
        VariantAdded, VariantData, VariantOption, VariantRemoved, VariantUpdated,
    },
    public::event_schemas,
    store::{
        StoreActivated, StoreCreated, StoreCreatedV1, StoreDeleted, StoreLowStockThresholdChanged,
        StorePaused, StoreShippingChanged, StoreTaxesChanged, StoreUpdated, TaxRateData,
    },
};
use serde_json::Value;
use uuid::Uuid;

struct Sample {
    event_type: &'static str,
    schema_version: u16,
    bytes: Vec<u8>,
    reads_as: Event,
}

fn owner() -> Uuid {
    Uuid::from_u128(0x7d3e_0000_0000_4000_8000_0000_0000_0001)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn usd(amount: i64) -> Money {
    Money {
        amount,
        currency: "USD".into(),
    }
}

fn variant() -> VariantData {
    VariantData {
        variant_id: id(2),
        name: "Large / Yellow".into(),
        sku: Some("SOCK-L-Y".into()),
        price: Some(usd(2199)),
        inventory_count: 12,
        options: vec![
            VariantOption {
                name: "size".into(),
                value: "L".into(),
            },
            VariantOption {
                name: "colour".into(),
                value: "yellow".into(),
            },
        ],
    }
}

fn product() -> ProductData {
    ProductData {
        store_id: owner(),
        title: "Sunny Sock".into(),
        slug: "sunny-sock".into(),
        description: Some("Warm and bright".into()),
        price: usd(1999),
        compare_at_price: Some(usd(2499)),
        cost: Some(usd(700)),
        images: vec!["https://cdn.example.com/sock.png".into()],
        status: "draft".into(),
        seo_title: Some("Sunny socks".into()),
        seo_description: None,
        tags: vec!["socks".into(), "summer".into()],
        category_ids: vec![id(3)],
        variants: vec![variant()],
    }
}

fn category() -> CategoryData {
    CategoryData {
        store_id: owner(),
        name: "Socks".into(),
        slug: "socks".into(),
        description: None,
        parent_id: Some(id(4)),
    }
}

fn collection() -> CollectionData {
    CollectionData {
        store_id: owner(),
        name: "Summer picks".into(),
        slug: "summer-picks".into(),
        description: Some("Hand-picked".into()),
        product_ids: vec![id(5), id(1)],
    }
}

fn current(event: Event) -> Sample {
    Sample {
        event_type: event.event_type(),
        schema_version: event.schema_version(),
        bytes: event.encode().expect("sample encodes"),
        reads_as: event,
    }
}

fn samples() -> Vec<Sample> {
    let created = StoreCreated {
        owner_id: owner(),
        name: "Sunny Socks".into(),
        slug: "sunny-socks".into(),
        niche: Some("apparel".into()),
        description: Some("Socks for sunny days".into()),
        currency: "EUR".into(),
    };
    let created_v1 = StoreCreatedV1 {
        owner_id: owner(),
        name: "Sunny Socks".into(),
        slug: "sunny-socks".into(),
        niche: None,
        description: None,
    };
    vec![
        current(Event::MerchantRegistered(MerchantRegistered {
            email: "ada@example.com".into(),
            name: Some("Ada".into()),
        })),
        current(Event::StoreCreated(created)),
        Sample {
            event_type: "store.created",
            schema_version: 1,
            bytes: postcard::to_allocvec(&created_v1).expect("sample encodes"),
            reads_as: Event::StoreCreated(created_v1.into()),
        },
        current(Event::StoreUpdated(StoreUpdated {
            name: Some("Sunny Socks Co".into()),
            slug: Some("sunny-socks-co".into()),
            niche: None,
            description: None,
        })),
        current(Event::StorePaused(StorePaused {
            reason: Some("holiday".into()),
        })),
        current(Event::StoreActivated(StoreActivated {})),
        current(Event::StoreDeleted(StoreDeleted {})),
        current(Event::StoreLowStockThresholdChanged(
            StoreLowStockThresholdChanged { threshold: 3 },
        )),
        current(Event::StoreShippingChanged(StoreShippingChanged {
            flat_rate: 495,
            free_above: Some(5000),
        })),
        current(Event::StoreTaxesChanged(StoreTaxesChanged {
            prices_include_tax: true,
            rates: vec![TaxRateData {
                country: "DE".into(),
                region: None,
                basis_points: 1900,
            }],
        })),
        current(Event::ProductCreated(ProductCreated { product: product() })),
        current(Event::ProductUpdated(ProductUpdated {
            product: product(),
            changed: vec!["title".into(), "price".into()],
        })),
        current(Event::ProductPublished(ProductPublished {})),
        current(Event::ProductArchived(ProductArchived {})),
        current(Event::VariantAdded(VariantAdded { variant: variant() })),
        current(Event::VariantUpdated(VariantUpdated { variant: variant() })),
        current(Event::VariantRemoved(VariantRemoved { variant_id: id(2) })),
        current(Event::InventoryAdjusted(InventoryAdjusted {
            variant_id: id(2),
            delta: -3,
            reason: "sale".into(),
            inventory_count: 9,
        })),
        current(Event::InventoryLowStock(InventoryLowStock {
            variant_id: id(2),
            sku: Some("SOCK-L-Y".into()),
            inventory_count: 2,
            threshold: 3,
        })),
        current(Event::InventoryReserved(InventoryReserved {
            order_id: id(7),
            lines: vec![StockLine {
                variant_id: id(2),
                quantity: 2,
                inventory_count: 10,
            }],
        })),
        current(Event::InventoryReleased(InventoryReleased {
            order_id: id(7),
            reason: "expired".into(),
            lines: vec![StockLine {
                variant_id: id(2),
                quantity: 2,
                inventory_count: 12,
            }],
        })),
        current(Event::CategoryCreated(CategoryCreated {
            category: category(),
        })),
        current(Event::CategoryUpdated(CategoryUpdated {
            category: category(),
        })),
        current(Event::CategoryDeleted(CategoryDeleted {})),
        current(Event::CollectionCreated(CollectionCreated {
            collection: collection(),
        })),
        current(Event::CollectionUpdated(CollectionUpdated {
            collection: collection(),
        })),
        current(Event::CollectionDeleted(CollectionDeleted {})),
        current(Event::IntegrationConnected(IntegrationConnected {
            integration: integration(),
        })),
        current(Event::IntegrationUpdated(IntegrationUpdated {
            integration: integration(),
            changed: vec!["endpoint_url".into()],
        })),
        current(Event::IntegrationEnabled(IntegrationEnabled {})),
        current(Event::IntegrationDisabled(IntegrationDisabled {
            reason: "gone".into(),
        })),
        current(Event::IntegrationSecretRotated(IntegrationSecretRotated {
            secret_id: id(5),
            previous_secret_id: id(4),
            previous_valid_until: Utc
                .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
                .single()
                .expect("a valid time"),
        })),
        current(Event::IntegrationDisconnected(IntegrationDisconnected {
            reason: DisconnectReason::StoreDeleted,
        })),
        Sample {
            event_type: "integration.disconnected",
            schema_version: 1,
            bytes: postcard::to_allocvec(&IntegrationDisconnectedV1 {}).expect("sample encodes"),
            reads_as: Event::IntegrationDisconnected(IntegrationDisconnected {
                reason: DisconnectReason::Merchant,
            }),
        },
        current(Event::IntegrationDeliveryExhausted(
            IntegrationDeliveryExhausted {
                target: "rankpilot".into(),
                event_id: id(6),
                event_type: "product.created".into(),
                resource_type: "product".into(),
                resource_id: id(1).to_string(),
                attempts: 8,
                last_status_code: 503,
                last_error: Some("service unavailable".into()),
            },
        )),
    ]
    .into_iter()
    .chain(order_samples())
    .collect()
}

fn sealed() -> Sealed {
    Sealed {
        key_id: id(8),
        nonce: vec![7; 24],
        ciphertext: b"not really ciphertext".to_vec(),
    }
}

fn two_socks() -> Vec<ItemQuantity> {
    vec![ItemQuantity {
        variant_id: id(2),
        quantity: 2,
    }]
}

fn order_samples() -> Vec<Sample> {
    vec![
        current(Event::CustomerCreated(CustomerCreated {
            store_id: owner(),
            email_digest: "5b1f0c".into(),
            contact: sealed(),
        })),
        current(Event::CustomerUpdated(CustomerUpdated {
            email_digest: None,
            contact: sealed(),
            changed: vec!["name".into()],
        })),
        current(Event::CustomerAccountOpened(CustomerAccountOpened {
            credential_id: id(20),
        })),
        current(Event::CustomerAddressAdded(CustomerAddressAdded {
            address_id: id(21),
            address: sealed(),
            default: true,
        })),
        current(Event::CustomerAddressUpdated(CustomerAddressUpdated {
            address_id: id(21),
            address: sealed(),
        })),
        current(Event::CustomerAddressRemoved(CustomerAddressRemoved {
            address_id: id(21),
            new_default: Some(id(22)),
        })),
        current(Event::CustomerDefaultAddressSet(
            CustomerDefaultAddressSet { address_id: id(22) },
        )),
        current(Event::CustomerWishlistAdded(CustomerWishlistAdded {
            product_id: id(1),
        })),
        current(Event::CustomerWishlistRemoved(CustomerWishlistRemoved {
            product_id: id(1),
        })),
        current(Event::OrderCreated(OrderCreated {
            store_id: owner(),
            number: 1001,
            customer_id: id(9),
            contact: sealed(),
            country: "DE".into(),
            region: Some("BE".into()),
            lines: vec![OrderLine {
                product_id: id(1),
                variant_id: id(2),
                title: "Sunny Sock".into(),
                variant_name: "Large / Yellow".into(),
                sku: Some("SOCK-L-Y".into()),
                quantity: 2,
                unit_price: 2199,
                tax: 702,
            }],
            totals: OrderTotals {
                currency: "EUR".into(),
                subtotal: 4398,
                shipping: 495,
                tax: 702,
                taxes_included: true,
                total: 4893,
            },
            payment_session: "cs_mock_0190".into(),
            payment_due: Utc
                .with_ymd_and_hms(2026, 12, 4, 10, 30, 0)
                .single()
                .expect("a valid time"),
        })),
        current(Event::OrderPaid(OrderPaid {
            amount: 4893,
            provider: "mock".into(),
            reference: "cs_mock_0190".into(),
        })),
        current(Event::OrderPaymentFailed(OrderPaymentFailed {
            provider: "stripe".into(),
            reference: "pi_3".into(),
            reason: "card_declined".into(),
        })),
        current(Event::OrderShipped(OrderShipped {
            fulfillment_id: id(10),
            number: 1001,
            contact: sealed(),
            carrier: "DHL".into(),
            tracking_number: Some("JD014600006281230704".into()),
            tracking_url: Some("https://track.example/JD014600006281230704".into()),
            items: two_socks(),
        })),
        current(Event::OrderDelivered(OrderDelivered {})),
        current(Event::OrderCancelled(OrderCancelled {
            reason: "customer asked".into(),
            refunded: 4893,
            restocked: two_socks(),
        })),
        current(Event::OrderRefunded(OrderRefunded {
            refund_id: id(11),
            amount: 1000,
            reason: "damaged".into(),
            restocked: Vec::new(),
        })),
        current(Event::OrderExpired(OrderExpired {
            restocked: two_socks(),
        })),
        current(Event::OrderNoteAdded(OrderNoteAdded {
            note: "gift wrap".into(),
        })),
    ]
}

fn integration() -> IntegrationData {
    IntegrationData {
        store_id: owner(),
        target: "rankpilot".into(),
        endpoint_url: "https://hooks.rankpilot.example/dropship".into(),
        event_types: vec!["product.created".into()],
        description: Some("SEO".into()),
        secret_id: id(4),
    }
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.hex"))
}

/// Compares with the checked-in fixture; writes it when missing and UPDATE_GOLDEN is set.
fn assert_golden(name: &str, bytes: &[u8]) -> Vec<u8> {
    let path = fixture_path(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let golden = hex::decode(text.trim()).expect("fixture is hex");
            assert_eq!(
                hex::encode(bytes),
                hex::encode(&golden),
                "encoding of {name} changed"
            );
            golden
        }
        Err(_) if std::env::var_os("UPDATE_GOLDEN").is_some() => {
            std::fs::write(&path, format!("{}\n", hex::encode(bytes))).expect("fixture written");
            bytes.to_vec()
        }
        Err(e) => panic!("missing fixture {}: {e}", path.display()),
    }
}

#[test]
fn every_catalogued_version_has_a_sample() {
    let mut sampled: Vec<_> = samples()
        .iter()
        .map(|s| (s.event_type, s.schema_version))
        .collect();
    let mut catalogued = CATALOGUE.to_vec();
    sampled.sort();
    catalogued.sort();
    assert_eq!(sampled, catalogued);
}

#[test]
fn every_golden_payload_still_encodes_and_decodes_the_same() {
    for sample in samples() {
        let name = format!("{}.v{}", sample.event_type, sample.schema_version);
        let golden = assert_golden(&name, &sample.bytes);
        let decoded = Event::decode(sample.event_type, sample.schema_version, &golden)
            .unwrap_or_else(|e| panic!("{name} no longer decodes: {e}"));
        assert_eq!(decoded, sample.reads_as, "{name} decodes differently");
    }
}

#[test]
fn the_golden_envelope_still_encodes_and_decodes_the_same() {
    let event = Event::StoreActivated(StoreActivated {});
    let envelope = RecordedEvent {
        position: 42,
        stream_id: format!("store-{}", owner()),
        version: 3,
        event_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042),
        event_type: event.event_type().into(),
        schema_version: event.schema_version(),
        store_id: Some(owner()),
        metadata: EventMetadata {
            actor: Some("merchant:1".into()),
            correlation_id: Some(Uuid::from_u128(7)),
            causation_id: None,
            request_id: Some("req-1".into()),
            idempotency_key: Some("key-1".into()),
            traceparent: None,
        },
        recorded_at: Utc
            .timestamp_micros(1_790_000_000_123_456)
            .single()
            .expect("valid time"),
        payload: event.encode().expect("encodes"),
    };
    let golden = assert_golden("envelope", &envelope.to_wire().expect("encodes"));
    assert_eq!(
        RecordedEvent::from_wire(&golden).expect("decodes"),
        envelope
    );
}

#[test]
fn every_event_as_integrators_read_it_is_valid_under_its_published_schema() {
    for sample in samples() {
        let current = Event::decode(sample.event_type, sample.schema_version, &sample.bytes)
            .expect("decodes");
        if current.schema_version() != sample.schema_version {
            continue;
        }
        let envelope = RecordedEvent {
            position: 9,
            stream_id: format!("store-{}", owner()),
            version: 2,
            event_id: id(9),
            event_type: sample.event_type.into(),
            schema_version: sample.schema_version,
            store_id: Some(owner()),
            metadata: EventMetadata {
                actor: Some("merchant:1".into()),
                request_id: Some("req-1".into()),
                ..EventMetadata::default()
            },
            recorded_at: Utc
                .timestamp_micros(1_790_000_000_123_456)
                .single()
                .expect("valid time"),
            payload: sample.bytes,
        };
        assert_valid(&schemas::public::render(&envelope));
    }
}

/// The schema with every object closed: a rendered field the schema does not name
/// (a cost price, an unsealed address) fails validation.
fn closed(mut schema: Value) -> Value {
    fn close(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                if fields.contains_key("properties") && !fields.contains_key("additionalProperties")
                {
                    fields.insert("additionalProperties".into(), Value::Bool(false));
                }
                fields.values_mut().for_each(close);
            }
            Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    close(&mut schema);
    schema
}

fn assert_valid(rendered: &Value) {
    let event_type = rendered["type"].as_str().expect("a type");
    let version = rendered["schema_version"].as_u64().expect("a version");
    let schema = event_schemas()
        .into_iter()
        .find(|schema| {
            schema.event_type == event_type && u64::from(schema.schema_version) == version
        })
        .unwrap_or_else(|| panic!("no schema for {event_type} v{version}"));
    let validator = jsonschema::validator_for(&closed(schema.schema)).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(rendered)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{event_type}: {errors:?}\n{rendered:#}");
}
