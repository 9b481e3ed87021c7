//! Request bodies into the domain's value objects, with every field at fault reported.

use api_core::{ApiError, FieldError};

use crate::fields::Fields;
use domain::{
    Country, Currency, Description, InvalidValue, Niche, PlaceName, StoreName,
    checkout::{TaxRate, TaxSettings},
    store::{Change, MAX_LOW_STOCK_THRESHOLD},
};
use schemas::api::stores::{CreateStoreRequest, ShippingBody, TaxesBody, UpdateStoreRequest};

pub struct NewStore {
    pub name: StoreName,
    pub niche: Option<Niche>,
    pub description: Option<Description>,
    pub currency: Currency,
}

pub struct StoreChanges {
    pub name: Option<StoreName>,
    pub niche: Change<Niche>,
    pub description: Change<Description>,
    pub low_stock_threshold: Option<u32>,
    /// Checked against the store's currency once the store is loaded.
    pub shipping: Option<ShippingBody>,
    pub taxes: Option<TaxSettings>,
}

/// More rates than any store needs; the list is read at every checkout.
const MAX_TAX_RATES: usize = 200;
const MAX_BASIS_POINTS: i64 = 10_000;

fn taxes(fields: &mut Fields, body: &TaxesBody) -> Option<TaxSettings> {
    if body.rates.len() > MAX_TAX_RATES {
        fields.push(FieldError::new(
            "taxes.rates",
            "too_many",
            format!("at most {MAX_TAX_RATES} rates"),
        ));
        return None;
    }
    let mut rates = Vec::with_capacity(body.rates.len());
    let mut places = std::collections::HashSet::new();
    for (index, raw) in body.rates.iter().enumerate() {
        let field = |name: &str| format!("taxes.rates[{index}].{name}");
        let country = fields.check(&field("country"), Country::parse(&raw.country));
        let region = fields.optional(&field("region"), raw.region.as_deref(), PlaceName::parse);
        let basis_points = fields.check(
            &field("basis_points"),
            u32::try_from(raw.basis_points)
                .ok()
                .filter(|bps| i64::from(*bps) <= MAX_BASIS_POINTS)
                .ok_or(InvalidValue::OutOfRange {
                    max: MAX_BASIS_POINTS,
                }),
        );
        if let (Some(country), Some(region), Some(basis_points)) = (country, region, basis_points) {
            let region = region.map(|r| r.as_str().to_ascii_uppercase());
            if !places.insert((country.as_str().to_owned(), region.clone())) {
                fields.push(FieldError::new(
                    format!("taxes.rates[{index}]"),
                    "duplicate",
                    "each country and region has one rate",
                ));
                continue;
            }
            rates.push(TaxRate {
                country: country.as_str().to_owned(),
                region,
                basis_points,
            });
        }
    }
    Some(TaxSettings {
        prices_include_tax: body.prices_include_tax,
        rates,
    })
}

pub fn new_store(request: &CreateStoreRequest) -> Result<NewStore, ApiError> {
    let mut fields = Fields::default();
    let name = fields.check("name", StoreName::parse(&request.name));
    let niche = fields.optional("niche", request.niche.as_deref(), Niche::parse);
    let description = fields.optional(
        "description",
        request.description.as_deref(),
        Description::parse,
    );
    let currency = match request.currency.as_deref() {
        None => Some(Currency::platform_default()),
        Some(code) => fields.check("currency", Currency::parse(code)),
    };
    fields.finish(|| {
        Some(NewStore {
            name: name?,
            niche: niche?,
            description: description?,
            currency: currency?,
        })
    })
}

fn change<T>(
    fields: &mut Fields,
    field: &str,
    raw: &Option<Option<String>>,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Option<Change<T>> {
    match raw {
        None => Some(Change::Keep),
        Some(None) => Some(Change::Clear),
        Some(Some(text)) if text.trim().is_empty() => Some(Change::Clear),
        Some(Some(text)) => fields.check(field, parse(text)).map(Change::Set),
    }
}

pub fn store_changes(request: &UpdateStoreRequest) -> Result<StoreChanges, ApiError> {
    let mut fields = Fields::default();
    let name = match &request.name {
        None => Some(None),
        Some(None) => {
            fields.push(FieldError::new(
                "name",
                InvalidValue::Empty.code(),
                "a store always has a name",
            ));
            None
        }
        Some(Some(raw)) => fields.check("name", StoreName::parse(raw)).map(Some),
    };
    let niche = change(&mut fields, "niche", &request.niche, Niche::parse);
    let description = change(
        &mut fields,
        "description",
        &request.description,
        Description::parse,
    );
    let low_stock_threshold = match request.low_stock_threshold {
        None => Some(None),
        Some(raw) => fields
            .check(
                "low_stock_threshold",
                u32::try_from(raw)
                    .ok()
                    .filter(|t| *t <= MAX_LOW_STOCK_THRESHOLD)
                    .ok_or(InvalidValue::OutOfRange {
                        max: MAX_LOW_STOCK_THRESHOLD.into(),
                    }),
            )
            .map(Some),
    };
    let taxes = match &request.taxes {
        None => Some(None),
        Some(body) => taxes(&mut fields, body).map(Some),
    };
    fields.finish(|| {
        Some(StoreChanges {
            name: name?,
            niche: niche?,
            description: description?,
            low_stock_threshold: low_stock_threshold?,
            shipping: request.shipping.clone(),
            taxes: taxes?,
        })
    })
}
