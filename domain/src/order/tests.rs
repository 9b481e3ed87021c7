use chrono::TimeZone;
use proptest::prelude::*;
use schemas::{
    order::{OrderPaid, OrderRefunded, OrderShipped},
    product::{ProductData, VariantData},
};

use super::*;
use crate::product::{self, Product, ProductCommand};

fn variant(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn due() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 30, 0)
        .single()
        .expect("a valid time")
}

fn sealed() -> Sealed {
    Sealed {
        key_id: Uuid::from_u128(9),
        nonce: vec![0; 24],
        ciphertext: vec![1, 2, 3],
    }
}

fn line(n: u128, quantity: u32, unit_price: i64) -> OrderLine {
    OrderLine {
        product_id: Uuid::from_u128(50),
        variant_id: variant(n),
        title: "Sunny Sock".into(),
        variant_name: format!("Variant {n}"),
        sku: None,
        quantity,
        unit_price,
        tax: 0,
    }
}

fn place_with(lines: Vec<OrderLine>) -> OrderCommand {
    let subtotal = lines
        .iter()
        .map(|l| l.unit_price * i64::from(l.quantity))
        .sum::<i64>();
    OrderCommand::Place(Box::new(PlaceOrder {
        store_id: Uuid::from_u128(1),
        number: 1001,
        customer_id: Uuid::from_u128(2),
        contact: sealed(),
        country: "DE".into(),
        region: None,
        lines,
        totals: OrderTotals {
            currency: "EUR".into(),
            subtotal,
            shipping: 500,
            tax: 0,
            taxes_included: true,
            total: subtotal + 500,
        },
        payment_session: "cs_mock_1".into(),
        payment_due: due(),
    }))
}

/// Two units of variant 1 and one of variant 2: 2 × 1000 + 1500 + 500 shipping = 4000.
fn place() -> OrderCommand {
    place_with(vec![line(1, 2, 1000), line(2, 1, 1500)])
}

fn pay(amount: i64) -> OrderCommand {
    OrderCommand::Pay {
        amount,
        provider: "mock".into(),
        reference: "cs_mock_1".into(),
    }
}

fn units(n: u128, quantity: u32) -> ItemQuantity {
    ItemQuantity {
        variant_id: variant(n),
        quantity,
    }
}

fn ship(items: Vec<ItemQuantity>) -> OrderCommand {
    OrderCommand::Fulfil(Box::new(Fulfil {
        fulfillment_id: Uuid::from_u128(77),
        carrier: Carrier::parse("DHL").expect("valid"),
        tracking_number: Some(TrackingNumber::parse("JD0146").expect("valid")),
        tracking_url: Some(TrackingUrl::parse("https://track.example/JD0146").expect("valid")),
        items,
    }))
}

fn refund(amount: i64, restock: Vec<ItemQuantity>) -> OrderCommand {
    OrderCommand::Refund(Box::new(Refund {
        refund_id: Uuid::from_u128(88),
        amount,
        reason: Reason::parse("damaged").expect("valid"),
        restock,
    }))
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: Reason::parse("customer asked").expect("valid"),
    }
}

/// The order after these commands, each of which must succeed.
fn given(commands: &[OrderCommand]) -> Order {
    commands.iter().fold(Order::Unplaced, |state, command| {
        let events = decide(&state, command).expect("a given command succeeds");
        events.iter().fold(state, evolve)
    })
}

fn placed(state: &Order) -> &PlacedOrder {
    state.placed().expect("placed")
}

fn refused(status: &'static str) -> Result<Vec<Event>, OrderError> {
    Err(OrderError::InvalidTransition { status })
}

#[test]
fn placing_an_order_records_it_pending_and_unfulfilled() {
    let state = given(&[place()]);
    let order = placed(&state);
    assert_eq!(order.status(), OrderStatus::Pending);
    assert_eq!(order.fulfillment(), FulfillmentStatus::Unfulfilled);
    assert_eq!(
        order.held(),
        BTreeMap::from([(variant(1), 2), (variant(2), 1)])
    );
    assert_eq!(decide(&state, &place()), Err(OrderError::AlreadyPlaced));
}

#[test]
fn an_order_needs_lines_each_variant_once_and_no_empty_line() {
    for lines in [
        vec![],
        vec![line(1, 1, 100), line(1, 2, 100)],
        vec![line(1, 0, 100)],
    ] {
        assert_eq!(
            decide(&Order::Unplaced, &place_with(lines)),
            Err(OrderError::InvalidLines)
        );
    }
}

#[test]
fn commands_on_an_order_that_does_not_exist_are_not_found() {
    assert_eq!(
        decide(&Order::Unplaced, &pay(4000)),
        Err(OrderError::NotFound)
    );
}

#[test]
fn paying_the_total_marks_it_paid_once() {
    let state = given(&[place()]);
    assert_eq!(
        decide(&state, &pay(3999)),
        Err(OrderError::AmountMismatch {
            paid: 3999,
            total: 4000
        })
    );
    assert_eq!(
        decide(&state, &pay(4000)),
        Ok(vec![Event::OrderPaid(OrderPaid {
            amount: 4000,
            provider: "mock".into(),
            reference: "cs_mock_1".into(),
        })])
    );
    let paid = given(&[place(), pay(4000)]);
    assert_eq!(placed(&paid).status(), OrderStatus::Paid);
    assert_eq!(placed(&paid).payment, PaymentStatus::Paid);
    assert_eq!(decide(&paid, &pay(4000)), refused("paid"));
}

#[test]
fn a_failed_payment_is_recorded_and_the_order_stays_payable() {
    let fail = OrderCommand::FailPayment {
        provider: "stripe".into(),
        reference: "pi_1".into(),
        reason: "card_declined".into(),
    };
    let state = given(&[place(), fail.clone()]);
    assert_eq!(placed(&state).status(), OrderStatus::Pending);
    assert!(decide(&state, &pay(4000)).is_ok());
    assert_eq!(
        decide(&given(&[place(), pay(4000)]), &fail),
        refused("paid")
    );
}

#[test]
fn an_unpaid_order_cannot_ship() {
    assert_eq!(
        decide(&given(&[place()]), &ship(vec![])),
        refused("pending")
    );
}

#[test]
fn shipping_part_of_an_order_then_the_rest_fulfils_it() {
    let state = given(&[place(), pay(4000), ship(vec![units(1, 1)])]);
    assert_eq!(
        placed(&state).fulfillment(),
        FulfillmentStatus::PartiallyFulfilled
    );
    assert_eq!(placed(&state).status(), OrderStatus::Paid);
    assert_eq!(
        decide(&state, &ship(vec![units(1, 2)])),
        Err(OrderError::TooManyUnits {
            variant_id: variant(1),
            remaining: 1
        })
    );
    assert_eq!(
        decide(&state, &ship(vec![units(9, 1)])),
        Err(OrderError::NotOnOrder(variant(9)))
    );
    let Ok(events) = decide(&state, &ship(vec![])) else {
        panic!("the rest ships")
    };
    let Event::OrderShipped(OrderShipped {
        items,
        number,
        carrier,
        ..
    }) = &events[0]
    else {
        panic!("order.shipped")
    };
    assert_eq!(
        (items.clone(), *number, carrier.as_str()),
        (vec![units(1, 1), units(2, 1)], 1001, "DHL")
    );
    let shipped = events.iter().fold(state, evolve);
    assert_eq!(placed(&shipped).status(), OrderStatus::Shipped);
    assert_eq!(
        decide(&shipped, &ship(vec![])),
        Err(OrderError::NothingToShip)
    );
}

#[test]
fn only_a_fully_shipped_order_can_be_delivered() {
    let partly = given(&[place(), pay(4000), ship(vec![units(1, 1)])]);
    assert_eq!(
        decide(&partly, &OrderCommand::MarkDelivered),
        refused("paid")
    );
    let delivered = given(&[
        place(),
        pay(4000),
        ship(vec![]),
        OrderCommand::MarkDelivered,
    ]);
    assert_eq!(placed(&delivered).status(), OrderStatus::Delivered);
    assert_eq!(
        decide(&delivered, &OrderCommand::MarkDelivered),
        refused("delivered")
    );
    assert_eq!(decide(&delivered, &cancel()), refused("delivered"));
}

#[test]
fn cancelling_a_paid_order_refunds_it_and_restocks_what_did_not_ship() {
    let state = given(&[place(), pay(4000), ship(vec![units(1, 1)])]);
    let Ok(events) = decide(&state, &cancel()) else {
        panic!("cancellable")
    };
    assert_eq!(
        events,
        vec![Event::OrderCancelled(schemas::order::OrderCancelled {
            reason: "customer asked".into(),
            refunded: 4000,
            restocked: vec![units(1, 1), units(2, 1)],
        })]
    );
    let cancelled = events.iter().fold(state, evolve);
    let order = placed(&cancelled);
    assert_eq!(
        (order.status(), order.payment),
        (OrderStatus::Cancelled, PaymentStatus::Refunded)
    );
    assert!(order.held().is_empty());
    assert_eq!(decide(&cancelled, &cancel()), refused("cancelled"));
    assert_eq!(decide(&cancelled, &ship(vec![])), refused("cancelled"));
}

#[test]
fn cancelling_an_unpaid_order_voids_its_payment() {
    let cancelled = given(&[place(), cancel()]);
    let order = placed(&cancelled);
    assert_eq!(order.payment, PaymentStatus::Voided);
    assert_eq!(decide(&cancelled, &pay(4000)), refused("cancelled"));
}

#[test]
fn a_shipped_order_cannot_be_cancelled() {
    assert_eq!(
        decide(&given(&[place(), pay(4000), ship(vec![])]), &cancel()),
        refused("shipped")
    );
}

#[test]
fn refunds_never_exceed_what_was_paid() {
    let state = given(&[place(), pay(4000), refund(1500, vec![])]);
    assert_eq!(placed(&state).payment, PaymentStatus::PartiallyRefunded);
    assert_eq!(
        decide(&state, &refund(2501, vec![])),
        Err(OrderError::RefundOutOfRange { refundable: 2500 })
    );
    assert_eq!(
        decide(&state, &refund(0, vec![])),
        Err(OrderError::RefundOutOfRange { refundable: 2500 })
    );
    let refunded = given(&[
        place(),
        pay(4000),
        refund(1500, vec![]),
        refund(2500, vec![]),
    ]);
    assert_eq!(placed(&refunded).status(), OrderStatus::Refunded);
    assert_eq!(decide(&refunded, &refund(1, vec![])), refused("refunded"));
    assert_eq!(
        decide(&given(&[place()]), &refund(1, vec![])),
        refused("pending")
    );
}

#[test]
fn a_refund_restocks_held_units_first_then_returned_ones() {
    let state = given(&[place(), pay(4000), ship(vec![units(1, 1)])]);
    assert_eq!(
        decide(&state, &refund(100, vec![units(1, 3)])),
        Err(OrderError::TooManyUnits {
            variant_id: variant(1),
            remaining: 2
        })
    );
    let Ok(events) = decide(&state, &refund(2000, vec![units(1, 2)])) else {
        panic!("refundable")
    };
    assert_eq!(
        events,
        vec![Event::OrderRefunded(OrderRefunded {
            refund_id: Uuid::from_u128(88),
            amount: 2000,
            reason: "damaged".into(),
            restocked: vec![units(1, 2)],
        })]
    );
    let restocked = events.iter().fold(state, evolve);
    let order = placed(&restocked);
    assert_eq!(order.held(), BTreeMap::from([(variant(2), 1)]));
    assert_eq!(order.kept(variant(1)), 0, "the shipped unit came back");
    // What is left to ship is variant 2 alone.
    let rest = decide(&restocked, &ship(vec![])).expect("ships the rest");
    let shipped = rest.iter().fold(restocked, evolve);
    assert_eq!(placed(&shipped).fulfillment(), FulfillmentStatus::Fulfilled);
}

#[test]
fn an_unpaid_order_expires_once_due_and_releases_its_stock() {
    let state = given(&[place()]);
    let early = due() - chrono::Duration::seconds(1);
    assert_eq!(
        decide(&state, &OrderCommand::Expire { now: early }),
        Err(OrderError::NotYetDue { due: due() })
    );
    let expired = given(&[place(), OrderCommand::Expire { now: due() }]);
    let order = placed(&expired);
    assert_eq!(
        (order.status(), order.payment),
        (OrderStatus::Cancelled, PaymentStatus::Voided)
    );
    assert!(order.held().is_empty());
    assert_eq!(
        decide(
            &given(&[place(), pay(4000)]),
            &OrderCommand::Expire { now: due() }
        ),
        refused("paid")
    );
}

#[test]
fn notes_can_be_added_in_any_state() {
    let note = OrderCommand::AddNote(Note::parse("gift wrap").expect("valid"));
    assert!(decide(&given(&[place(), cancel()]), &note).is_ok());
}

// The money path as a whole: orders take stock from one product and give it back.

const VARIANTS: u128 = 2;
const STOCK: u32 = 5;

fn product() -> Product {
    Product::Existing(Box::new(ProductData {
        store_id: Uuid::from_u128(1),
        title: "Sunny Sock".into(),
        slug: "sunny-sock".into(),
        description: None,
        price: schemas::product::Money {
            amount: 1000,
            currency: "EUR".into(),
        },
        compare_at_price: None,
        cost: None,
        images: vec![],
        status: "active".into(),
        seo_title: None,
        seo_description: None,
        tags: vec![],
        category_ids: vec![],
        variants: (1..=VARIANTS)
            .map(|n| VariantData {
                variant_id: variant(n),
                name: format!("Variant {n}"),
                sku: None,
                price: None,
                inventory_count: STOCK,
                options: vec![],
            })
            .collect(),
    }))
}

#[derive(Debug, Clone)]
enum Step {
    Checkout(Vec<(u128, u32)>),
    Pay(usize),
    Ship(usize, Vec<(u128, u32)>),
    Deliver(usize),
    Cancel(usize),
    Refund(usize, i64, Vec<(u128, u32)>),
    Expire(usize),
}

fn items() -> impl Strategy<Value = Vec<(u128, u32)>> {
    proptest::collection::vec((1..=VARIANTS, 0u32..4), 0..3)
}

fn step() -> impl Strategy<Value = Step> {
    let order = 0usize..6;
    prop_oneof![
        3 => proptest::collection::vec((1..=VARIANTS, 1u32..4), 1..3).prop_map(Step::Checkout),
        2 => order.clone().prop_map(Step::Pay),
        2 => (order.clone(), items()).prop_map(|(o, i)| Step::Ship(o, i)),
        1 => order.clone().prop_map(Step::Deliver),
        1 => order.clone().prop_map(Step::Cancel),
        2 => (order.clone(), 0i64..6000, items()).prop_map(|(o, a, i)| Step::Refund(o, a, i)),
        1 => order.prop_map(Step::Expire),
    ]
}

fn quantities(raw: &[(u128, u32)]) -> Vec<ItemQuantity> {
    raw.iter()
        .map(|&(n, quantity)| units(n, quantity))
        .collect()
}

struct Shop {
    product: Product,
    orders: Vec<Order>,
}

impl Shop {
    fn checkout(&mut self, raw: &[(u128, u32)]) {
        let mut merged: BTreeMap<u128, u32> = BTreeMap::new();
        for &(n, quantity) in raw {
            *merged.entry(n).or_default() += quantity;
        }
        let lines: Vec<OrderLine> = merged.iter().map(|(&n, &q)| line(n, q, 1000)).collect();
        let order_id = Uuid::from_u128(1000 + self.orders.len() as u128);
        let reserve = ProductCommand::ReserveStock {
            order_id,
            items: lines
                .iter()
                .map(|l| units(l.variant_id.as_u128() - 100, l.quantity))
                .collect(),
            low_stock_threshold: 1,
        };
        // Both or neither, as the checkout's multi-stream append does.
        let Ok(stock_events) = product::decide(&self.product, &reserve) else {
            return;
        };
        let Ok(order_events) = decide(&Order::Unplaced, &place_with(lines)) else {
            return;
        };
        self.product = stock_events
            .iter()
            .fold(self.product.clone(), product::evolve);
        self.orders
            .push(order_events.iter().fold(Order::Unplaced, evolve));
    }

    fn run(&mut self, index: usize, command: &OrderCommand) {
        let Some(state) = self.orders.get(index) else {
            return;
        };
        let Ok(events) = decide(state, command) else {
            return;
        };
        let restocked: Vec<ItemQuantity> = events
            .iter()
            .flat_map(|event| match event {
                Event::OrderCancelled(e) => e.restocked.clone(),
                Event::OrderRefunded(e) => e.restocked.clone(),
                Event::OrderExpired(e) => e.restocked.clone(),
                _ => vec![],
            })
            .collect();
        let release = ProductCommand::ReleaseStock {
            order_id: Uuid::from_u128(1000 + index as u128),
            items: restocked,
            reason: Reason::parse("returned").expect("valid"),
        };
        let stock_events =
            product::decide(&self.product, &release).expect("released stock always fits");
        self.product = stock_events
            .iter()
            .fold(self.product.clone(), product::evolve);
        self.orders[index] = events.iter().fold(state.clone(), evolve);
    }

    fn available(&self, n: u128) -> u32 {
        self.product
            .existing()
            .and_then(|p| p.variants.iter().find(|v| v.variant_id == variant(n)))
            .map_or(0, |v| v.inventory_count)
    }
}

proptest! {
    #[test]
    fn refunds_stay_within_payments_and_stock_is_only_ever_moved(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let mut shop = Shop { product: product(), orders: Vec::new() };
        for step in &steps {
            match step {
                Step::Checkout(items) => shop.checkout(items),
                Step::Pay(o) => {
                    let total = shop.orders.get(*o).and_then(Order::placed).map_or(0, |p| p.totals.total);
                    shop.run(*o, &pay(total));
                }
                Step::Ship(o, items) => shop.run(*o, &ship(quantities(items))),
                Step::Deliver(o) => shop.run(*o, &OrderCommand::MarkDelivered),
                Step::Cancel(o) => shop.run(*o, &cancel()),
                Step::Refund(o, amount, items) => shop.run(*o, &refund(*amount, quantities(items))),
                Step::Expire(o) => shop.run(*o, &OrderCommand::Expire { now: due() }),
            }
            for order in shop.orders.iter().filter_map(Order::placed) {
                prop_assert!(order.refunded <= order.paid, "{order:?}");
                prop_assert!(order.paid == 0 || order.paid == order.totals.total);
                prop_assert!(!order.is_closed() || order.held().is_empty(), "a closed order holds no stock");
            }
            for n in 1..=VARIANTS {
                // available + reserved (held by unpaid orders) + sold (held by paid
                // ones, or shipped and kept) is the stock the product started with.
                let with_orders: u32 = shop
                    .orders
                    .iter()
                    .filter_map(Order::placed)
                    .map(|order| order.held().get(&variant(n)).copied().unwrap_or(0) + order.kept(variant(n)))
                    .sum();
                prop_assert_eq!(shop.available(n) + with_orders, STOCK, "variant {}", n);
            }
        }
    }
}
