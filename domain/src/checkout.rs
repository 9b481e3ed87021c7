//! What a checkout charges (DESIGN §6): prices from the catalog, shipping and tax from
//! the store's settings, in integer minor units of the store's currency. Tax is
//! computed per line and rounded half up; shipping is not taxed.

use schemas::order::OrderTotals;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Amount;

/// A flat rate per order, free once the subtotal reaches `free_above`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingSettings {
    pub flat_rate: i64,
    pub free_above: Option<i64>,
}

/// A tax rate for a country, or for one region of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub region: Option<String>,
    /// Hundredths of a percent: 1900 is 19 %.
    pub basis_points: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSettings {
    /// Whether catalog prices already contain the tax.
    pub prices_include_tax: bool,
    pub rates: Vec<TaxRate>,
}

impl TaxSettings {
    /// The region's own rate, else the country's, else none.
    pub fn rate_for(&self, country: &str, region: Option<&str>) -> u32 {
        let of_country = |rate: &&TaxRate| rate.country.eq_ignore_ascii_case(country);
        let regional = region.and_then(|region| {
            self.rates.iter().filter(of_country).find(|rate| {
                rate.region
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(region))
            })
        });
        regional
            .or_else(|| {
                self.rates
                    .iter()
                    .filter(of_country)
                    .find(|rate| rate.region.is_none())
            })
            .map_or(0, |rate| rate.basis_points)
    }
}

/// One line to charge: the catalog's unit price and the quantity bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priced {
    pub unit_price: i64,
    pub quantity: u32,
}

/// The charge: each line's tax, in the order given, and the totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub line_taxes: Vec<i64>,
    pub totals: OrderTotals,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckoutError {
    #[error("the order total would exceed {}", Amount::MAX)]
    TotalTooLarge,
}

/// Where the order ships, for its tax rate.
pub struct Destination<'a> {
    pub country: &'a str,
    pub region: Option<&'a str>,
}

pub fn quote(
    lines: &[Priced],
    currency: &str,
    shipping: &ShippingSettings,
    taxes: &TaxSettings,
    destination: &Destination<'_>,
) -> Result<Quote, CheckoutError> {
    let rate = i128::from(taxes.rate_for(destination.country, destination.region));
    let mut subtotal: i128 = 0;
    let mut tax: i128 = 0;
    let mut line_taxes = Vec::with_capacity(lines.len());
    for line in lines {
        let gross = i128::from(line.unit_price) * i128::from(line.quantity);
        let line_tax = if taxes.prices_include_tax {
            gross - divide_rounding_half_up(gross * 10_000, 10_000 + rate)
        } else {
            divide_rounding_half_up(gross * rate, 10_000)
        };
        subtotal += gross;
        tax += line_tax;
        line_taxes.push(within_amount(line_tax)?);
    }
    let free = shipping
        .free_above
        .is_some_and(|threshold| subtotal >= i128::from(threshold));
    let shipping = if free || lines.is_empty() {
        0
    } else {
        i128::from(shipping.flat_rate)
    };
    let total = subtotal + shipping + if taxes.prices_include_tax { 0 } else { tax };
    Ok(Quote {
        line_taxes,
        totals: OrderTotals {
            currency: currency.to_owned(),
            subtotal: within_amount(subtotal)?,
            shipping: within_amount(shipping)?,
            tax: within_amount(tax)?,
            taxes_included: taxes.prices_include_tax,
            total: within_amount(total)?,
        },
    })
}

fn divide_rounding_half_up(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator) / (2 * denominator)
}

fn within_amount(value: i128) -> Result<i64, CheckoutError> {
    i64::try_from(value)
        .ok()
        .filter(|value| (0..=Amount::MAX).contains(value))
        .ok_or(CheckoutError::TotalTooLarge)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn germany() -> Destination<'static> {
        Destination {
            country: "DE",
            region: None,
        }
    }

    fn taxes(prices_include_tax: bool) -> TaxSettings {
        TaxSettings {
            prices_include_tax,
            rates: vec![
                TaxRate {
                    country: "DE".into(),
                    region: None,
                    basis_points: 1900,
                },
                TaxRate {
                    country: "US".into(),
                    region: Some("CA".into()),
                    basis_points: 725,
                },
            ],
        }
    }

    fn socks() -> Vec<Priced> {
        vec![
            Priced {
                unit_price: 1999,
                quantity: 2,
            },
            Priced {
                unit_price: 500,
                quantity: 1,
            },
        ]
    }

    #[test]
    fn exclusive_tax_is_added_per_line_and_shipping_is_flat() {
        let shipping = ShippingSettings {
            flat_rate: 495,
            free_above: None,
        };
        let quote = quote(&socks(), "EUR", &shipping, &taxes(false), &germany()).expect("fits");
        // 3998 × 19 % = 759.62 → 760; 500 × 19 % = 95.
        assert_eq!(quote.line_taxes, vec![760, 95]);
        assert_eq!(
            quote.totals,
            OrderTotals {
                currency: "EUR".into(),
                subtotal: 4498,
                shipping: 495,
                tax: 855,
                taxes_included: false,
                total: 5848,
            }
        );
    }

    #[test]
    fn inclusive_tax_is_the_part_of_the_price_that_is_tax() {
        let quote = quote(
            &socks(),
            "EUR",
            &ShippingSettings::default(),
            &taxes(true),
            &germany(),
        )
        .expect("fits");
        // 3998 / 1.19 = 3359.66 → 3360, so 638 of it is tax; 500 / 1.19 = 420.17 → 80.
        assert_eq!(quote.line_taxes, vec![638, 80]);
        assert_eq!((quote.totals.tax, quote.totals.total), (718, 4498));
    }

    #[test]
    fn shipping_is_free_from_the_threshold_on() {
        let shipping = ShippingSettings {
            flat_rate: 495,
            free_above: Some(4498),
        };
        let quote = quote(
            &socks(),
            "EUR",
            &shipping,
            &TaxSettings::default(),
            &germany(),
        )
        .expect("fits");
        assert_eq!((quote.totals.shipping, quote.totals.total), (0, 4498));
    }

    #[test]
    fn a_regions_own_rate_wins_over_its_countrys_and_unknown_places_pay_none() {
        let settings = taxes(false);
        assert_eq!(settings.rate_for("us", Some("ca")), 725);
        assert_eq!(settings.rate_for("US", Some("NY")), 0);
        assert_eq!(settings.rate_for("DE", Some("BE")), 1900);
        assert_eq!(settings.rate_for("FR", None), 0);
    }

    #[test]
    fn a_total_beyond_the_largest_amount_is_refused() {
        let huge = vec![Priced {
            unit_price: Amount::MAX,
            quantity: 2,
        }];
        assert_eq!(
            quote(
                &huge,
                "EUR",
                &ShippingSettings::default(),
                &TaxSettings::default(),
                &germany()
            ),
            Err(CheckoutError::TotalTooLarge)
        );
    }

    proptest! {
        #[test]
        fn totals_add_up_and_tax_never_exceeds_the_goods(
            lines in proptest::collection::vec((0i64..1_000_000, 1u32..1000), 1..20),
            rate in 0u32..5000,
            inclusive in any::<bool>(),
            flat_rate in 0i64..10_000,
        ) {
            let lines: Vec<Priced> = lines.into_iter().map(|(unit_price, quantity)| Priced { unit_price, quantity }).collect();
            let taxes = TaxSettings {
                prices_include_tax: inclusive,
                rates: vec![TaxRate { country: "DE".into(), region: None, basis_points: rate }],
            };
            let shipping = ShippingSettings { flat_rate, free_above: None };
            let quote = quote(&lines, "EUR", &shipping, &taxes, &germany()).expect("fits");
            let totals = &quote.totals;
            prop_assert_eq!(quote.line_taxes.iter().sum::<i64>(), totals.tax);
            let expected = totals.subtotal + totals.shipping + if inclusive { 0 } else { totals.tax };
            prop_assert_eq!(totals.total, expected);
            if inclusive {
                prop_assert!(totals.tax <= totals.subtotal);
            }
        }
    }
}
