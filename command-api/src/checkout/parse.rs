//! A checkout request into a cart: lines, email and the address, every field at fault
//! reported with its JSON path.

use std::collections::HashSet;

use api_core::{ApiError, FieldError};
use domain::{AddressLine, Country, Email, PersonName, Phone, PlaceName, PostalCode};
use schemas::{
    api::orders::{AddressBody, CheckoutRequest},
    pii::{ContactDetails, PostalAddress},
};
use uuid::Uuid;

use crate::fields::Fields;

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 999;

pub(crate) struct CartLine {
    pub variant_id: Uuid,
    pub quantity: u32,
}

pub(crate) struct Cart {
    pub lines: Vec<CartLine>,
    pub email: Email,
    pub country: Country,
    pub region: Option<PlaceName>,
    pub contact: ContactDetails,
}

pub(crate) fn cart(request: &CheckoutRequest) -> Result<Cart, ApiError> {
    let mut fields = Fields::default();
    let lines = lines(&mut fields, request);
    let email = match &request.email {
        Some(email) => fields.check("email", Email::parse(email)),
        None => required(&mut fields, "email"),
    };
    let address = match &request.shipping_address {
        Some(address) => postal_address(&mut fields, "shipping_address", address),
        None => required(&mut fields, "shipping_address"),
    };
    fields.finish(|| {
        let (email, address) = (email?, address?);
        let contact = ContactDetails {
            email: email.as_str().to_owned(),
            name: Some(address.address.name.clone()),
            shipping_address: Some(address.address),
        };
        Some(Cart {
            lines: lines?,
            email,
            country: address.country,
            region: address.region,
            contact,
        })
    })
}

fn required<T>(fields: &mut Fields, field: &str) -> Option<T> {
    fields.push(FieldError::new(
        field,
        "required",
        "required of a guest (a signed-in customer's account has a default)",
    ));
    None
}

/// An address as the store taxes and ships by it.
pub(crate) struct ParsedAddress {
    pub address: PostalAddress,
    pub country: Country,
    pub region: Option<PlaceName>,
}

/// Every field of `body` at fault, named under `prefix` (`shipping_address.city`).
pub(crate) fn postal_address(
    fields: &mut Fields,
    prefix: &str,
    body: &AddressBody,
) -> Option<ParsedAddress> {
    let field = |name: &str| format!("{prefix}.{name}");
    let name = fields.check(&field("name"), PersonName::parse(&body.name));
    let line1 = fields.check(&field("line1"), AddressLine::parse(&body.line1));
    let line2 = fields.optional(&field("line2"), body.line2.as_deref(), AddressLine::parse);
    let city = fields.check(&field("city"), PlaceName::parse(&body.city));
    let region = fields.optional(&field("region"), body.region.as_deref(), PlaceName::parse);
    let postal_code = fields.optional(
        &field("postal_code"),
        body.postal_code.as_deref(),
        PostalCode::parse,
    );
    let country = fields.check(&field("country"), Country::parse(&body.country));
    let phone = fields.optional(&field("phone"), body.phone.as_deref(), Phone::parse);
    let (name, region, country) = (name?, region?, country?);
    Some(ParsedAddress {
        address: PostalAddress {
            name: name.as_str().to_owned(),
            line1: line1?.as_str().to_owned(),
            line2: line2?.map(|line| line.as_str().to_owned()),
            city: city?.as_str().to_owned(),
            region: region.as_ref().map(|r| r.as_str().to_owned()),
            postal_code: postal_code?.map(|code| code.as_str().to_owned()),
            country: country.as_str().to_owned(),
            phone: phone?.map(|phone| phone.as_str().to_owned()),
        },
        country,
        region,
    })
}

fn lines(fields: &mut Fields, request: &CheckoutRequest) -> Option<Vec<CartLine>> {
    if request.items.is_empty() || request.items.len() > MAX_LINES {
        fields.push(FieldError::new(
            "items",
            if request.items.is_empty() {
                "required"
            } else {
                "too_many"
            },
            format!("a checkout has 1 to {MAX_LINES} lines"),
        ));
        return None;
    }
    let mut seen = HashSet::new();
    let mut lines = Vec::with_capacity(request.items.len());
    let mut valid = true;
    for (index, item) in request.items.iter().enumerate() {
        let field = format!("items[{index}]");
        if !seen.insert(item.variant_id) {
            fields.push(FieldError::new(
                field,
                "duplicate",
                "each variant goes on one line; add up the quantities",
            ));
            valid = false;
        } else if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            fields.push(FieldError::new(
                format!("{field}.quantity"),
                "out_of_range",
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
            valid = false;
        } else {
            lines.push(CartLine {
                variant_id: item.variant_id,
                quantity: u32::try_from(item.quantity).unwrap_or(1),
            });
        }
    }
    valid.then_some(lines)
}
