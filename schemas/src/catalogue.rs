//! Every event type the platform writes, with its current schema version and the older
//! versions that are upcast on read. Adding a field means a new version: the old
//! struct stays here (as `legacy`) with a `From` into the new one, and its golden
//! fixture keeps proving that old log entries decode.

use crate::{
    catalog::{
        CategoryCreated, CategoryDeleted, CategoryUpdated, CollectionCreated, CollectionDeleted,
        CollectionUpdated,
    },
    customer::{
        CustomerAccountOpened, CustomerAddressAdded, CustomerAddressRemoved,
        CustomerAddressUpdated, CustomerCreated, CustomerDefaultAddressSet, CustomerUpdated,
        CustomerWishlistAdded, CustomerWishlistRemoved,
    },
    error::{DecodeError, EncodeError, decode_exact, encode},
    integration::{
        IntegrationConnected, IntegrationDeliveryExhausted, IntegrationDisabled,
        IntegrationDisconnected, IntegrationDisconnectedV1, IntegrationEnabled,
        IntegrationSecretRotated, IntegrationUpdated,
    },
    merchant::MerchantRegistered,
    order::{
        OrderCancelled, OrderCreated, OrderDelivered, OrderExpired, OrderNoteAdded, OrderPaid,
        OrderPaymentFailed, OrderRefunded, OrderShipped,
    },
    product::{
        InventoryAdjusted, InventoryLowStock, InventoryReleased, InventoryReserved,
        ProductArchived, ProductCreated, ProductPublished, ProductUpdated, VariantAdded,
        VariantRemoved, VariantUpdated,
    },
    store::{
        StoreActivated, StoreCreated, StoreCreatedV1, StoreDeleted, StoreLowStockThresholdChanged,
        StorePaused, StoreShippingChanged, StoreTaxesChanged, StoreUpdated,
    },
};

macro_rules! catalogue {
    ($(
        $variant:ident($payload:ty) = $event_type:literal v $version:literal
            $(, legacy { $($old_version:literal => $old_payload:ty),* })? ;
    )*) => {
        /// A typed event payload at its current schema version.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Event {
            $($variant($payload),)*
        }

        /// Every `(event type, schema version)` that can be read, current and legacy.
        pub const CATALOGUE: &[(&str, u16)] = &[
            $(($event_type, $version), $($(($event_type, $old_version),)*)?)*
        ];

        impl Event {
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $event_type,)*
                }
            }

            pub fn schema_version(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $version,)*
                }
            }

            /// The payload as JSON, as webhooks and integrators receive it.
            pub fn to_json(&self) -> serde_json::Value {
                match self {
                    $(Self::$variant(payload) => serde_json::to_value(payload).unwrap_or_default(),)*
                }
            }

            /// Every current `(event type, schema version)` with the JSON Schema of its
            /// payload as [`crate::public`] renders it.
            pub fn payload_schemas() -> Vec<(&'static str, u16, schemars::Schema)> {
                vec![$(($event_type, $version, schemars::schema_for!($payload)),)*]
            }

            pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
                match self {
                    $(Self::$variant(payload) => encode($event_type, payload),)*
                }
            }

            /// Decodes a payload of any known version, upcasting old ones.
            pub fn decode(event_type: &str, schema_version: u16, bytes: &[u8]) -> Result<Self, DecodeError> {
                match (event_type, schema_version) {
                    $(
                        ($event_type, $version) => decode_exact::<$payload>($event_type, bytes).map(Self::$variant),
                        $($(
                            ($event_type, $old_version) => decode_exact::<$old_payload>($event_type, bytes)
                                .map(|old| Self::$variant(<$payload>::from(old))),
                        )*)?
                    )*
                    (known, _) if CATALOGUE.iter().any(|(t, _)| *t == known) => {
                        Err(DecodeError::UnknownSchemaVersion {
                            event_type: known.to_owned(),
                            schema_version,
                        })
                    }
                    (unknown, _) => Err(DecodeError::UnknownEventType(unknown.to_owned())),
                }
            }
        }
    };
}

catalogue! {
    MerchantRegistered(MerchantRegistered) = "merchant.registered" v 1;
    StoreCreated(StoreCreated) = "store.created" v 2, legacy { 1 => StoreCreatedV1 };
    StoreUpdated(StoreUpdated) = "store.updated" v 1;
    StorePaused(StorePaused) = "store.paused" v 1;
    StoreActivated(StoreActivated) = "store.activated" v 1;
    StoreDeleted(StoreDeleted) = "store.deleted" v 1;
    StoreLowStockThresholdChanged(StoreLowStockThresholdChanged) = "store.low_stock_threshold_changed" v 1;
    StoreShippingChanged(StoreShippingChanged) = "store.shipping_changed" v 1;
    StoreTaxesChanged(StoreTaxesChanged) = "store.taxes_changed" v 1;
    ProductCreated(ProductCreated) = "product.created" v 1;
    ProductUpdated(ProductUpdated) = "product.updated" v 1;
    ProductPublished(ProductPublished) = "product.published" v 1;
    ProductArchived(ProductArchived) = "product.archived" v 1;
    VariantAdded(VariantAdded) = "product.variant_added" v 1;
    VariantUpdated(VariantUpdated) = "product.variant_updated" v 1;
    VariantRemoved(VariantRemoved) = "product.variant_removed" v 1;
    InventoryAdjusted(InventoryAdjusted) = "inventory.adjusted" v 1;
    InventoryLowStock(InventoryLowStock) = "inventory.low_stock" v 1;
    InventoryReserved(InventoryReserved) = "inventory.reserved" v 1;
    InventoryReleased(InventoryReleased) = "inventory.released" v 1;
    CategoryCreated(CategoryCreated) = "category.created" v 1;
    CategoryUpdated(CategoryUpdated) = "category.updated" v 1;
    CategoryDeleted(CategoryDeleted) = "category.deleted" v 1;
    CollectionCreated(CollectionCreated) = "collection.created" v 1;
    CollectionUpdated(CollectionUpdated) = "collection.updated" v 1;
    CollectionDeleted(CollectionDeleted) = "collection.deleted" v 1;
    IntegrationConnected(IntegrationConnected) = "integration.connected" v 1;
    IntegrationUpdated(IntegrationUpdated) = "integration.updated" v 1;
    IntegrationEnabled(IntegrationEnabled) = "integration.enabled" v 1;
    IntegrationDisabled(IntegrationDisabled) = "integration.disabled" v 1;
    IntegrationSecretRotated(IntegrationSecretRotated) = "integration.secret_rotated" v 1;
    IntegrationDisconnected(IntegrationDisconnected) = "integration.disconnected" v 2, legacy { 1 => IntegrationDisconnectedV1 };
    IntegrationDeliveryExhausted(IntegrationDeliveryExhausted) = "integration.delivery_exhausted" v 1;
    CustomerCreated(CustomerCreated) = "customer.created" v 1;
    CustomerUpdated(CustomerUpdated) = "customer.updated" v 1;
    CustomerAccountOpened(CustomerAccountOpened) = "customer.account_opened" v 1;
    CustomerAddressAdded(CustomerAddressAdded) = "customer.address_added" v 1;
    CustomerAddressUpdated(CustomerAddressUpdated) = "customer.address_updated" v 1;
    CustomerAddressRemoved(CustomerAddressRemoved) = "customer.address_removed" v 1;
    CustomerDefaultAddressSet(CustomerDefaultAddressSet) = "customer.default_address_set" v 1;
    CustomerWishlistAdded(CustomerWishlistAdded) = "customer.wishlist_added" v 1;
    CustomerWishlistRemoved(CustomerWishlistRemoved) = "customer.wishlist_removed" v 1;
    OrderCreated(OrderCreated) = "order.created" v 1;
    OrderPaid(OrderPaid) = "order.paid" v 1;
    OrderPaymentFailed(OrderPaymentFailed) = "order.payment_failed" v 1;
    OrderShipped(OrderShipped) = "order.shipped" v 1;
    OrderDelivered(OrderDelivered) = "order.delivered" v 1;
    OrderCancelled(OrderCancelled) = "order.cancelled" v 1;
    OrderRefunded(OrderRefunded) = "order.refunded" v 1;
    OrderExpired(OrderExpired) = "order.expired" v 1;
    OrderNoteAdded(OrderNoteAdded) = "order.note_added" v 1;
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::RecordedEvent;

    #[test]
    fn an_unknown_event_type_is_an_error_value() {
        assert_eq!(
            Event::decode("store.exploded", 1, &[]),
            Err(DecodeError::UnknownEventType("store.exploded".into()))
        );
    }

    #[test]
    fn an_unknown_schema_version_is_an_error_value() {
        assert_eq!(
            Event::decode("store.paused", 9, &[0]),
            Err(DecodeError::UnknownSchemaVersion {
                event_type: "store.paused".into(),
                schema_version: 9
            })
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = Event::StorePaused(StorePaused { reason: None })
            .encode()
            .expect("encodes");
        bytes.push(0);
        assert!(matches!(
            Event::decode("store.paused", 1, &bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for (event_type, version) in CATALOGUE {
                let _ = Event::decode(event_type, *version, &bytes);
            }
            let _ = RecordedEvent::from_wire(&bytes);
        }

        #[test]
        fn store_updates_round_trip(name in proptest::option::of(".{0,40}"), niche in proptest::option::of(".{0,40}")) {
            let event = Event::StoreUpdated(StoreUpdated { name, slug: None, niche, description: None });
            let bytes = event.encode().expect("encodes");
            prop_assert_eq!(Event::decode(event.event_type(), event.schema_version(), &bytes), Ok(event));
        }
    }
}
