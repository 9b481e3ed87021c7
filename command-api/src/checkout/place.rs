//! Placing an order: the catalog prices and stocks every line, and one multi-stream
//! append writes the order, the stock it reserves on each product and, for a new
//! shopper, the customer — all of it or nothing. A product that moved meanwhile is read
//! again and the whole checkout decided again, so stock never goes below zero.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

use api_core::{ApiError, FieldError, auth::CustomerPrincipal};
use chrono::Utc;
use domain::{
    checkout::{Destination, Priced, quote},
    customer::{self, CustomerCommand},
    order::{self, Order, PlaceOrder},
    product::{self, ProductCommand, ProductStatus},
    store::StoreProfile,
};
use eventlog::{
    AppendError, AppendRequest, Appended, ExpectedVersion, MultiAppendOutcome, NewEvent, UniqueKey,
};
use schemas::{
    Event, EventMetadata,
    api::orders::{CheckoutView, PaymentSessionView},
    order::{ItemQuantity, OrderLine},
    pii::Sealed,
    product::ProductData,
};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use super::{
    parse::Cart,
    stock::{Source, Stocked, load_products},
    stripe_sessions::stripe_reference,
};
use crate::{
    aggregate::{Answer, stream_id},
    catalog::aggregates::ProductFold,
    orders::{
        CUSTOMER_STREAM_PREFIX, OrderFold, customer_stream, next_order_number, order_stream,
        order_view,
    },
    state::CommandState,
    write::{Idempotency, RecordedResponse, append_failed, recorded},
};

/// Checkouts decided again after another writer moved one of their products.
const MAX_ATTEMPTS: usize = 20;

/// The prefix of mock payment sessions; the order id follows.
pub(crate) const MOCK_SESSION_PREFIX: &str = "cs_mock_";

pub(crate) fn customer_email_scope(store_id: Uuid) -> String {
    format!("customer.email:{store_id}")
}

pub(crate) struct Placing<'a> {
    pub store_id: Uuid,
    pub store: &'a StoreProfile,
    pub cart: Cart,
    pub idempotency: Option<Idempotency>,
    /// The store's customer who is signed in, if one is: the order is theirs.
    pub signed_in: Option<CustomerPrincipal>,
}

pub(crate) async fn place(state: &CommandState, placing: Placing<'_>) -> Result<Answer, ApiError> {
    if let Some(previous) =
        Idempotency::previous(placing.idempotency.as_ref(), state.pool()).await?
    {
        return Ok(Answer {
            recorded: previous,
            replayed: true,
        });
    }
    let Placing {
        store_id,
        store,
        cart,
        idempotency,
        signed_in,
    } = placing;
    let variants: Vec<Uuid> = cart.lines.iter().map(|line| line.variant_id).collect();
    let products = products_of(state.pool(), store_id, &variants).await?;
    // Writers of one process take their turns on a product instead of failing each
    // other's appends; locks are taken in one order, so no two checkouts wait on each other.
    let mut product_ids: Vec<Uuid> = products.values().copied().collect();
    product_ids.sort_unstable();
    product_ids.dedup();
    let _turns = lock_all(state, &product_ids).await;

    let order_id = Uuid::now_v7();
    let mut number = None;
    let mut shopper: Option<Shopper> = None;
    let mut source = Source::Cached;
    for _ in 0..MAX_ATTEMPTS {
        let stocked = load_products(state, &product_ids, source).await?;
        let lines = match price_lines(&cart, &products, &stocked, store_id) {
            Ok(lines) => lines,
            // A shopper is refused on what the log says, never on a cached guess.
            Err(_) if source == Source::Cached => {
                source = Source::Log;
                continue;
            }
            Err(refused) => return Err(refused),
        };
        let number = match number {
            Some(number) => number,
            None => *number.insert(
                next_order_number(state.pool(), store_id)
                    .await
                    .map_err(ApiError::internal)?,
            ),
        };
        let current = match shopper.take() {
            Some(known) => known,
            None => match signed_in {
                Some(customer) => Shopper::signed_in(state, store_id, &cart, customer).await?,
                None => Shopper::find_or_new(state, store_id, &cart).await?,
            },
        };
        let checkout = Decided {
            store_id,
            store,
            order_id,
            number,
            shopper: &current,
            cart: &cart,
            lines: &lines,
            stocked: &stocked,
        };
        let (parts, respond, reserved) = checkout.parts(state, idempotency.as_ref())?;
        let outcome = state.log.append_multi(parts).await;
        match &outcome {
            Ok(MultiAppendOutcome::Appended(_)) => {
                for (product_id, after) in reserved {
                    state.stock_cache.committed(product_id, after);
                }
            }
            _ => state.stock_cache.forget(&product_ids),
        }
        match outcome {
            Ok(MultiAppendOutcome::Appended(appended)) => {
                let order = appended
                    .last()
                    .ok_or_else(|| ApiError::internal("no order part"))?;
                return Ok(Answer {
                    recorded: respond(order),
                    replayed: false,
                });
            }
            Ok(MultiAppendOutcome::Replayed(stored)) => {
                return Ok(Answer {
                    recorded: recorded(stored)?,
                    replayed: true,
                });
            }
            // Another writer (another process) moved a product: decide again.
            Err(AppendError::VersionConflict { stream_id, .. })
                if stream_id
                    .starts_with(<ProductFold as crate::aggregate::Aggregate>::STREAM_PREFIX) =>
            {
                shopper = Some(current);
                source = Source::Log;
            }
            // Another checkout created this shopper meanwhile: use that customer.
            Err(AppendError::UniqueKeyTaken { .. }) if current.is_new => {}
            Err(other) => return Err(append_failed(other)),
        }
    }
    Err(ApiError::Conflict {
        code: "contended",
        message: "too many concurrent checkouts of these products; retry".into(),
    })
}

async fn lock_all(state: &CommandState, product_ids: &[Uuid]) -> Vec<OwnedMutexGuard<()>> {
    let mut turns = Vec::with_capacity(product_ids.len());
    for id in product_ids {
        turns.push(
            state
                .stream_locks
                .of(&stream_id::<ProductFold>(*id))
                .lock_owned()
                .await,
        );
    }
    turns
}

/// The products of the variants asked for, as the catalog knows them (a variant added a
/// moment ago may not be there yet, and reads as unknown).
async fn products_of(
    pool: &PgPool,
    store_id: Uuid,
    variants: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>, ApiError> {
    let wanted: Vec<String> = variants.iter().map(Uuid::to_string).collect();
    let rows: Vec<(Uuid, sqlx::types::Json<Vec<Uuid>>)> = sqlx::query_as(
        "SELECT id, variant_ids FROM catalog_products \
         WHERE store_id = $1 AND variant_ids ?| $2::text[]",
    )
    .bind(store_id)
    .bind(&wanted)
    .fetch_all(pool)
    .await
    .map_err(ApiError::internal)?;
    let asked: HashSet<&Uuid> = variants.iter().collect();
    let mut products = HashMap::new();
    for (product_id, sqlx::types::Json(variant_ids)) in rows {
        for variant_id in variant_ids.into_iter().filter(|id| asked.contains(id)) {
            products.insert(variant_id, product_id);
        }
    }
    Ok(products)
}

/// Each line as the catalog prices it now, or a 422 naming every line that cannot be
/// bought: unknown, not for sale, or short of stock.
fn price_lines(
    cart: &Cart,
    products: &HashMap<Uuid, Uuid>,
    stocked: &HashMap<Uuid, Stocked>,
    store_id: Uuid,
) -> Result<Vec<OrderLine>, ApiError> {
    let mut errors = Vec::new();
    let mut lines = Vec::with_capacity(cart.lines.len());
    for (index, wanted) in cart.lines.iter().enumerate() {
        let field = format!("items[{index}]");
        let found = products.get(&wanted.variant_id).and_then(|product_id| {
            let product = stocked.get(product_id)?.product.existing()?;
            let variant = product
                .variants
                .iter()
                .find(|variant| variant.variant_id == wanted.variant_id)?;
            (product.store_id == store_id).then_some((*product_id, product, variant))
        });
        let Some((product_id, product, variant)) = found else {
            errors.push(FieldError::new(
                field,
                "unknown_variant",
                "no such variant in this store",
            ));
            continue;
        };
        if ProductStatus::parse(&product.status) != Some(ProductStatus::Active) {
            errors.push(FieldError::new(
                field,
                "not_for_sale",
                "this product is not for sale",
            ));
            continue;
        }
        if variant.inventory_count < wanted.quantity {
            errors.push(FieldError::new(
                field,
                "out_of_stock",
                format!("only {} in stock", variant.inventory_count),
            ));
            continue;
        }
        lines.push(OrderLine {
            product_id,
            variant_id: variant.variant_id,
            title: product.title.clone(),
            variant_name: variant.name.clone(),
            sku: variant.sku.clone(),
            quantity: wanted.quantity,
            unit_price: unit_price(product, variant),
            tax: 0,
        });
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn unit_price(product: &ProductData, variant: &schemas::product::VariantData) -> i64 {
    variant
        .price
        .as_ref()
        .map_or(product.price.amount, |price| price.amount)
}

/// The customer a checkout is for: the signed-in customer, or else the store's customer
/// with this email, or a new one.
struct Shopper {
    customer_id: Uuid,
    is_new: bool,
    email_digest: String,
    contact: Sealed,
    /// Who placed it, as the events record it.
    actor: String,
}

impl Shopper {
    async fn signed_in(
        state: &CommandState,
        store_id: Uuid,
        cart: &Cart,
        customer: CustomerPrincipal,
    ) -> Result<Self, ApiError> {
        let contact = state
            .vault
            .seal(customer.customer_id, store_id, &cart.contact)
            .await
            .map_err(ApiError::internal)?;
        Ok(Self {
            customer_id: customer.customer_id,
            is_new: false,
            email_digest: pii::email_digest(cart.email.as_str()),
            contact,
            actor: customer.actor(),
        })
    }

    async fn find_or_new(
        state: &CommandState,
        store_id: Uuid,
        cart: &Cart,
    ) -> Result<Self, ApiError> {
        let email_digest = pii::email_digest(cart.email.as_str());
        let owner: Option<String> =
            sqlx::query_scalar("SELECT stream_id FROM unique_keys WHERE scope = $1 AND value = $2")
                .bind(customer_email_scope(store_id))
                .bind(&email_digest)
                .fetch_optional(state.pool())
                .await
                .map_err(ApiError::internal)?;
        let existing = owner
            .as_deref()
            .and_then(|stream| stream.strip_prefix(CUSTOMER_STREAM_PREFIX))
            .and_then(|id| Uuid::parse_str(id).ok());
        let customer_id = existing.unwrap_or_else(Uuid::now_v7);
        let contact = state
            .vault
            .seal(customer_id, store_id, &cart.contact)
            .await
            .map_err(ApiError::internal)?;
        Ok(Self {
            customer_id,
            is_new: existing.is_none(),
            email_digest,
            contact,
            actor: format!("customer:{customer_id}"),
        })
    }
}

/// One attempt's decisions, turned into the parts of its append.
struct Decided<'a> {
    store_id: Uuid,
    store: &'a StoreProfile,
    order_id: Uuid,
    number: u64,
    shopper: &'a Shopper,
    cart: &'a Cart,
    lines: &'a [OrderLine],
    stocked: &'a HashMap<Uuid, Stocked>,
}

type Respond = Arc<dyn Fn(&Appended) -> RecordedResponse + Send + Sync>;

/// Each product as the stock reservation leaves it, once committed.
type Reserved = Vec<(Uuid, Stocked)>;

impl Decided<'_> {
    fn parts(
        &self,
        state: &CommandState,
        idempotency: Option<&Idempotency>,
    ) -> Result<(Vec<AppendRequest>, Respond, Reserved), ApiError> {
        let metadata = EventMetadata {
            actor: Some(self.shopper.actor.clone()),
            correlation_id: Some(self.order_id),
            idempotency_key: idempotency.map(|i| i.key().to_owned()),
            request_id: api_core::current_request_id(),
            ..EventMetadata::default()
        };
        let (mut parts, reserved) = self.stock_parts(&metadata)?;
        if self.shopper.is_new {
            parts.push(self.customer_part(&metadata)?);
        }
        let (order_events, after) = self.order_events(state)?;
        let respond = respond(self.order_id, after, self.session(state));
        // The order goes last: its position is the append's highest, the one a reader
        // waits for to see all of it.
        let mut order = AppendRequest::new(
            order_stream(self.order_id),
            ExpectedVersion::NoStream,
            order_events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(self.store_id)
        .with_metadata(metadata);
        if let Some(idempotency) = idempotency {
            let respond = Arc::clone(&respond);
            order = order.idempotent(idempotency.claim(move |appended| respond(appended)));
        }
        parts.push(order);
        Ok((parts, respond, reserved))
    }

    /// A mock session, or the reference of the Stripe session opened once it is placed.
    fn session(&self, state: &CommandState) -> String {
        match state.payments().stripe() {
            Some(_) => stripe_reference(self.order_id),
            None => format!("{MOCK_SESSION_PREFIX}{}", self.order_id.simple()),
        }
    }

    fn order_events(&self, state: &CommandState) -> Result<(Vec<Event>, Order), ApiError> {
        let priced: Vec<Priced> = self
            .lines
            .iter()
            .map(|line| Priced {
                unit_price: line.unit_price,
                quantity: line.quantity,
            })
            .collect();
        let destination = Destination {
            country: self.cart.country.as_str(),
            region: self.cart.region.as_ref().map(|region| region.as_str()),
        };
        let charged = quote(
            &priced,
            &self.store.currency,
            &self.store.shipping,
            &self.store.taxes,
            &destination,
        )
        .map_err(|error| {
            ApiError::Validation(vec![FieldError::new(
                "items",
                "too_large",
                error.to_string(),
            )])
        })?;
        let lines = self
            .lines
            .iter()
            .zip(&charged.line_taxes)
            .map(|(line, tax)| OrderLine {
                tax: *tax,
                ..line.clone()
            })
            .collect();
        let command = order::OrderCommand::Place(Box::new(PlaceOrder {
            store_id: self.store_id,
            number: self.number,
            customer_id: self.shopper.customer_id,
            contact: self.shopper.contact.clone(),
            country: self.cart.country.as_str().to_owned(),
            region: self.cart.region.as_ref().map(|r| r.as_str().to_owned()),
            lines,
            totals: charged.totals,
            payment_session: self.session(state),
            payment_due: Utc::now() + state.payment_timeout(),
        }));
        let events = order::decide(&Order::Unplaced, &command)
            .map_err(|error| crate::orders::order_rule_broken(error, "items"))?;
        let after = events.iter().fold(Order::Unplaced, order::evolve);
        Ok((events, after))
    }

    /// One part per product: its stock reserved at the version it was read at.
    fn stock_parts(
        &self,
        metadata: &EventMetadata,
    ) -> Result<(Vec<AppendRequest>, Reserved), ApiError> {
        let mut by_product: BTreeMap<Uuid, Vec<ItemQuantity>> = BTreeMap::new();
        for line in self.lines {
            by_product
                .entry(line.product_id)
                .or_default()
                .push(ItemQuantity {
                    variant_id: line.variant_id,
                    quantity: line.quantity,
                });
        }
        by_product
            .into_iter()
            .map(|(product_id, items)| {
                let stocked = self
                    .stocked
                    .get(&product_id)
                    .ok_or_else(|| ApiError::internal("a priced product was not loaded"))?;
                let command = ProductCommand::ReserveStock {
                    order_id: self.order_id,
                    items,
                    low_stock_threshold: self.store.low_stock_threshold,
                };
                // The lines were checked against this very state, so a refusal here is
                // a bug, not the shopper's.
                let events =
                    product::decide(&stocked.product, &command).map_err(ApiError::internal)?;
                let after = stocked.after(&events);
                let part = AppendRequest::new(
                    stream_id::<ProductFold>(product_id),
                    ExpectedVersion::Exact(stocked.version),
                    events.into_iter().map(NewEvent::new).collect(),
                )
                .in_store(self.store_id)
                .with_metadata(metadata.clone());
                Ok((part, (product_id, after)))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(|planned| planned.into_iter().unzip())
    }

    fn customer_part(&self, metadata: &EventMetadata) -> Result<AppendRequest, ApiError> {
        let digest = self.shopper.email_digest.clone();
        let command = CustomerCommand::Create {
            store_id: self.store_id,
            email_digest: digest.clone(),
            contact: self.shopper.contact.clone(),
        };
        let events =
            customer::decide(&customer::Customer::Unknown, &command).map_err(ApiError::internal)?;
        Ok(AppendRequest::new(
            customer_stream(self.shopper.customer_id),
            ExpectedVersion::NoStream,
            events.into_iter().map(NewEvent::new).collect(),
        )
        .in_store(self.store_id)
        .with_metadata(metadata.clone())
        .reserving(UniqueKey::new(customer_email_scope(self.store_id), digest)))
    }
}

fn respond(order_id: Uuid, after: Order, session: String) -> Respond {
    Arc::new(move |appended: &Appended| {
        let order = after
            .placed()
            .map(|placed| order_view(order_id, placed, appended.version));
        let mock = session.starts_with(MOCK_SESSION_PREFIX);
        let view = order.map(|order| CheckoutView {
            order,
            payment: PaymentSessionView {
                confirm_url: mock.then(|| format!("/api/v1/public/payments/{session}/confirm")),
                session_id: session.clone(),
                provider: if mock { "mock" } else { "stripe" }.into(),
                checkout_url: None,
            },
        });
        RecordedResponse {
            status: 201,
            version: appended.version,
            position: appended.last_position(),
            location: None,
            body: json!({ "data": view, "error": null }),
        }
    })
}

/// Loads an order for a payment or a merchant's command.
pub(crate) async fn load_order(
    state: &CommandState,
    order_id: Uuid,
) -> Result<eventlog::Loaded<Order>, ApiError> {
    eventlog::load::<OrderFold>(
        state.pool(),
        &order_stream(order_id),
        state.snapshot_every(),
    )
    .await
    .map_err(ApiError::internal)
}
