//! Which events an order command produces, or why it is refused.

use std::collections::{BTreeMap, HashSet};

use schemas::{
    Event,
    order::{
        ItemQuantity, OrderCancelled, OrderCreated, OrderDelivered, OrderExpired, OrderNoteAdded,
        OrderPaid, OrderPaymentFailed, OrderRefunded, OrderShipped,
    },
};
use uuid::Uuid;

use super::{
    Fulfil, FulfillmentStatus, Order, OrderCommand, OrderError, PaymentStatus, PlaceOrder,
    PlacedOrder, Refund, units,
};

pub fn decide(state: &Order, command: &OrderCommand) -> Result<Vec<Event>, OrderError> {
    if let OrderCommand::Place(place) = command {
        return place_order(state, place);
    }
    let order = state.placed().ok_or(OrderError::NotFound)?;
    match command {
        OrderCommand::Place(_) => Err(OrderError::AlreadyPlaced),
        OrderCommand::Pay {
            amount,
            provider,
            reference,
        } => {
            require(
                order,
                order.payment == PaymentStatus::Pending && !order.is_closed(),
            )?;
            if *amount != order.totals.total {
                return Err(OrderError::AmountMismatch {
                    paid: *amount,
                    total: order.totals.total,
                });
            }
            Ok(vec![Event::OrderPaid(OrderPaid {
                amount: *amount,
                provider: provider.clone(),
                reference: reference.clone(),
            })])
        }
        OrderCommand::FailPayment {
            provider,
            reference,
            reason,
        } => {
            require(
                order,
                order.payment == PaymentStatus::Pending && !order.is_closed(),
            )?;
            Ok(vec![Event::OrderPaymentFailed(OrderPaymentFailed {
                provider: provider.clone(),
                reference: reference.clone(),
                reason: reason.clone(),
            })])
        }
        OrderCommand::Fulfil(fulfil) => fulfil_order(order, fulfil),
        OrderCommand::MarkDelivered => {
            require(
                order,
                !order.is_closed() && order.fulfillment() == FulfillmentStatus::Fulfilled,
            )?;
            Ok(vec![Event::OrderDelivered(OrderDelivered {})])
        }
        OrderCommand::Cancel { reason } => {
            require(
                order,
                !order.is_closed()
                    && matches!(
                        order.fulfillment(),
                        FulfillmentStatus::Unfulfilled | FulfillmentStatus::PartiallyFulfilled
                    ),
            )?;
            Ok(vec![Event::OrderCancelled(OrderCancelled {
                reason: reason.as_str().to_owned(),
                refunded: order.refundable(),
                restocked: quantities(order.held()),
            })])
        }
        OrderCommand::Refund(refund) => refund_order(order, refund),
        OrderCommand::Expire { now } => {
            require(
                order,
                order.payment == PaymentStatus::Pending && !order.is_closed(),
            )?;
            if *now < order.payment_due {
                return Err(OrderError::NotYetDue {
                    due: order.payment_due,
                });
            }
            Ok(vec![Event::OrderExpired(OrderExpired {
                restocked: quantities(order.held()),
            })])
        }
        OrderCommand::AddNote(note) => Ok(vec![Event::OrderNoteAdded(OrderNoteAdded {
            note: note.as_str().to_owned(),
        })]),
    }
}

/// Refuses a transition the order's current state does not allow, naming that state.
fn require(order: &PlacedOrder, allowed: bool) -> Result<(), OrderError> {
    if allowed {
        Ok(())
    } else {
        Err(OrderError::InvalidTransition {
            status: order.status().as_str(),
        })
    }
}

fn place_order(state: &Order, place: &PlaceOrder) -> Result<Vec<Event>, OrderError> {
    if state.placed().is_some() {
        return Err(OrderError::AlreadyPlaced);
    }
    let mut variants = HashSet::new();
    let valid_lines = !place.lines.is_empty()
        && place
            .lines
            .iter()
            .all(|line| line.quantity > 0 && variants.insert(line.variant_id));
    if !valid_lines {
        return Err(OrderError::InvalidLines);
    }
    Ok(vec![Event::OrderCreated(OrderCreated {
        store_id: place.store_id,
        number: place.number,
        customer_id: place.customer_id,
        contact: place.contact.clone(),
        country: place.country.clone(),
        region: place.region.clone(),
        lines: place.lines.clone(),
        totals: place.totals.clone(),
        payment_session: place.payment_session.clone(),
        payment_due: place.payment_due,
    })])
}

fn fulfil_order(order: &PlacedOrder, fulfil: &Fulfil) -> Result<Vec<Event>, OrderError> {
    require(
        order,
        !order.is_closed()
            && matches!(
                order.payment,
                PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
            ),
    )?;
    let held = order.held();
    let items = if fulfil.items.is_empty() {
        held
    } else {
        within(&fulfil.items, |variant| {
            order
                .ordered()
                .contains_key(&variant)
                .then(|| units(&held, variant))
        })?
    };
    if items.is_empty() {
        return Err(OrderError::NothingToShip);
    }
    Ok(vec![Event::OrderShipped(OrderShipped {
        fulfillment_id: fulfil.fulfillment_id,
        number: order.number,
        contact: order.contact.clone(),
        carrier: fulfil.carrier.as_str().to_owned(),
        tracking_number: fulfil
            .tracking_number
            .as_ref()
            .map(|number| number.as_str().to_owned()),
        tracking_url: fulfil
            .tracking_url
            .as_ref()
            .map(|url| url.as_str().to_owned()),
        items: quantities(items),
    })])
}

fn refund_order(order: &PlacedOrder, refund: &Refund) -> Result<Vec<Event>, OrderError> {
    require(
        order,
        matches!(
            order.payment,
            PaymentStatus::Paid | PaymentStatus::PartiallyRefunded
        ),
    )?;
    let refundable = order.refundable();
    if refund.amount < 1 || refund.amount > refundable {
        return Err(OrderError::RefundOutOfRange { refundable });
    }
    // What is held goes back first, then shipped units (a return).
    let held = order.held();
    let restock = within(&refund.restock, |variant| {
        order
            .ordered()
            .contains_key(&variant)
            .then(|| units(&held, variant) + order.kept(variant))
    })?;
    Ok(vec![Event::OrderRefunded(OrderRefunded {
        refund_id: refund.refund_id,
        amount: refund.amount,
        reason: refund.reason.as_str().to_owned(),
        restocked: quantities(restock),
    })])
}

/// Adds up the requested units by variant and checks them against what is left for
/// each (`None`: the variant is not on the order).
fn within(
    requested: &[ItemQuantity],
    remaining: impl Fn(Uuid) -> Option<u32>,
) -> Result<BTreeMap<Uuid, u32>, OrderError> {
    let mut units: BTreeMap<Uuid, u32> = BTreeMap::new();
    for item in requested {
        let total = units.entry(item.variant_id).or_default();
        *total = total.saturating_add(item.quantity);
    }
    for (&variant_id, &quantity) in &units {
        let remaining = remaining(variant_id).ok_or(OrderError::NotOnOrder(variant_id))?;
        if quantity == 0 || quantity > remaining {
            return Err(OrderError::TooManyUnits {
                variant_id,
                remaining,
            });
        }
    }
    Ok(units)
}

fn quantities(units: BTreeMap<Uuid, u32>) -> Vec<ItemQuantity> {
    units
        .into_iter()
        .map(|(variant_id, quantity)| ItemQuantity {
            variant_id,
            quantity,
        })
        .collect()
}
