//! Value objects: constructed by a fallible `parse`, valid for as long as they live.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a raw value was refused. The API names the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidValue {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must be at least {min} characters")]
    TooShort { min: usize },
    #[error("must not contain control characters")]
    ControlCharacters,
    #[error("is not a valid email address")]
    NotAnEmail,
    #[error("is not an ISO 4217 currency code")]
    UnknownCurrency,
    #[error("must be between 0 and {max}")]
    OutOfRange { max: i64 },
    #[error("must be an http(s) URL or a media URL of this platform")]
    NotAUrl,
    #[error("must not contain whitespace")]
    Whitespace,
    #[error("must not repeat {0}")]
    Repeated(String),
    #[error("must have at most {max} entries")]
    TooMany { max: usize },
    #[error("must be an event type (`product.created`), `aggregate.*` or `*`")]
    NotAnEventType,
    #[error("must be an ISO 3166-1 alpha-2 country code")]
    NotACountry,
}

impl InvalidValue {
    /// A stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "required",
            Self::TooLong { .. } => "too_long",
            Self::TooShort { .. } => "too_short",
            Self::ControlCharacters => "invalid_characters",
            Self::NotAnEmail => "invalid_email",
            Self::UnknownCurrency => "invalid_currency",
            Self::OutOfRange { .. } => "out_of_range",
            Self::NotAUrl => "invalid_url",
            Self::Whitespace => "invalid_characters",
            Self::Repeated(_) => "duplicate",
            Self::TooMany { .. } => "too_many",
            Self::NotAnEventType => "invalid_event_type",
            Self::NotACountry => "invalid_country",
        }
    }
}

/// Trimmed text of 1..=`max` characters without control characters.
fn bounded_text(raw: &str, max: usize) -> Result<String, InvalidValue> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(InvalidValue::Empty);
    }
    if text.chars().count() > max {
        return Err(InvalidValue::TooLong { max });
    }
    if text.chars().any(char::is_control) {
        return Err(InvalidValue::ControlCharacters);
    }
    Ok(text.to_owned())
}

macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, max = $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
                bounded_text(raw, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_value!(
    /// A store's display name.
    StoreName, max = 100
);
text_value!(
    /// What a store sells, in the merchant's words ("pet supplies").
    Niche, max = 100
);
text_value!(
    /// A merchant's own name.
    DisplayName, max = 100
);
text_value!(
    /// A product's title, as shoppers see it.
    ProductTitle, max = 255
);
text_value!(
    /// A variant's name ("Large / Yellow").
    VariantName, max = 255
);
text_value!(
    /// The name of a category or a collection.
    GroupName, max = 100
);
text_value!(
    /// A search-engine title.
    SeoTitle, max = 255
);
text_value!(
    /// A search-engine description.
    SeoDescription, max = 500
);
text_value!(
    /// Why stock moved ("sale", "restock", "damaged").
    Reason, max = 200
);
text_value!(
    /// An option of a variant, its name or its value ("size", "M").
    OptionText, max = 100
);
text_value!(
    /// Who carries a shipment ("DHL", "USPS").
    Carrier, max = 100
);
text_value!(
    /// A carrier's tracking number.
    TrackingNumber, max = 100
);
text_value!(
    /// A merchant's note on an order.
    Note, max = 2000
);
text_value!(
    /// Whom an order ships to.
    PersonName, max = 200
);
text_value!(
    /// A street line of an address.
    AddressLine, max = 200
);
text_value!(
    /// A city, or a region (state, province, county) of a country.
    PlaceName, max = 100
);
text_value!(
    /// A postal code, in whatever form its country writes it.
    PostalCode, max = 20
);
text_value!(
    /// A phone number as the shopper wrote it.
    Phone, max = 40
);

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let code = raw.trim();
        if code.is_empty() {
            return Err(InvalidValue::Empty);
        }
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(InvalidValue::NotACountry);
        }
        Ok(Self(code.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a shopper follows a shipment: an absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingUrl(String);

impl TrackingUrl {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = bounded_text(raw, 2048)?;
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Ok(Self(text))
            }
            _ => Err(InvalidValue::NotAUrl),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A free-form label merchants filter by; compared without regard to case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 50).map(|text| Self(text.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stock-keeping unit: visible characters without spaces, unique within a store
/// regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = bounded_text(raw, 64)?;
        if text.chars().any(char::is_whitespace) {
            return Err(InvalidValue::Whitespace);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two SKUs are compared in.
    pub fn key(sku: &str) -> String {
        sku.to_uppercase()
    }
}

/// A non-negative amount of minor currency units, below a trillion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Amount(i64);

impl Amount {
    pub const MAX: i64 = 999_999_999_999;

    pub fn parse(raw: i64) -> Result<Self, InvalidValue> {
        if (0..=Self::MAX).contains(&raw) {
            Ok(Self(raw))
        } else {
            Err(InvalidValue::OutOfRange { max: Self::MAX })
        }
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// Where an image lives: an absolute http(s) URL, or a path this platform's media
/// endpoint serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl(String);

impl ImageUrl {
    pub const MEDIA_PREFIX: &'static str = "/api/v1/public/media/";

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = bounded_text(raw, 2048)?;
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"));
        let valid = match rest {
            Some(rest) => rest
                .split(['/', '?', '#'])
                .next()
                .is_some_and(|host| !host.is_empty()),
            None => text.starts_with(Self::MEDIA_PREFIX),
        };
        if !valid || text.chars().any(char::is_whitespace) {
            return Err(InvalidValue::NotAUrl);
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text a slug is made from, and the slug to use when nothing in it is sluggable.
pub trait SlugSource {
    const FALLBACK: &'static str;
    fn text(&self) -> &str;
}

impl SlugSource for StoreName {
    const FALLBACK: &'static str = "store";
    fn text(&self) -> &str {
        self.as_str()
    }
}

impl SlugSource for ProductTitle {
    const FALLBACK: &'static str = "product";
    fn text(&self) -> &str {
        self.as_str()
    }
}

impl SlugSource for GroupName {
    const FALLBACK: &'static str = "group";
    fn text(&self) -> &str {
        self.as_str()
    }
}

/// A store's description: multi-line text, so newlines and tabs are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 5000;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(InvalidValue::Empty);
        }
        if text.chars().count() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(InvalidValue::ControlCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, normalised (trimmed, lower-cased) so that one mailbox is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let normalised = raw.trim().to_lowercase();
        if normalised.is_empty() {
            return Err(InvalidValue::Empty);
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &normalised,
            email_address::Options::default().without_display_text(),
        )
        .map_err(|_| InvalidValue::NotAnEmail)?;
        // A mailbox on the public internet has a dotted domain; `a@localhost` is not one.
        if !parsed.domain().contains('.') {
            return Err(InvalidValue::NotAnEmail);
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The URL-safe handle of a store, product, category or collection: the slugified name,
/// or that plus `-2`, `-3`… when the plain one is taken. Unique through a reservation
/// (platform-wide for stores, within the store for the rest).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slug(String);

impl Slug {
    /// Long enough to read, short enough for a URL with a suffix.
    const MAX_BASE_CHARS: usize = 60;

    /// The plain slug of a name, before any collision suffix. Names with nothing
    /// sluggable in them ("🔥🔥") still get a handle.
    pub fn base_for(name: &impl SlugSource) -> Self {
        let mut base = slug::slugify(name.text());
        if base.len() > Self::MAX_BASE_CHARS {
            base.truncate(Self::MAX_BASE_CHARS);
            base.truncate(base.trim_end_matches('-').len());
        }
        if base.is_empty() {
            base = fallback_of(name).to_owned();
        }
        Self(base)
    }

    /// The `n`th candidate for a name: the base itself for 1, then `base-2`, `base-3`…
    pub fn candidate(name: &impl SlugSource, n: u32) -> Self {
        let base = Self::base_for(name);
        if n <= 1 {
            base
        } else {
            Self(format!("{}-{n}", base.0))
        }
    }

    /// Whether this slug is one of `name`'s candidates.
    pub fn belongs_to(&self, name: &impl SlugSource) -> bool {
        let base = Self::base_for(name);
        match self.0.strip_prefix(&base.0) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix('-')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 2 && rest == format!("-{n}")),
            None => false,
        }
    }

    /// Whether `raw` has the shape of some slug (lowercase ASCII letters, digits and
    /// hyphens, no longer than a base with a suffix): anything else names nothing and
    /// need not be looked up.
    pub fn could_be(raw: &str) -> bool {
        (1..=Self::MAX_BASE_CHARS + 11).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// Reads a slug that was produced by this type earlier (from the log).
    pub fn from_recorded(slug: String) -> Self {
        Self(slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn fallback_of<S: SlugSource>(_: &S) -> &'static str {
    S::FALLBACK
}

/// An ISO 4217 currency code in use today.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency(String);

const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL \
BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP \
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW \
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO \
NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD \
SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG \
XOF XPF YER ZAR ZMW ZWG";

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err(InvalidValue::Empty);
        }
        if code.len() == 3 && ISO_4217.split(' ').any(|known| known == code) {
            Ok(Self(code))
        } else {
            Err(InvalidValue::UnknownCurrency)
        }
    }

    /// The currency a store gets when its merchant names none (DESIGN §6).
    pub fn platform_default() -> Self {
        Self("USD".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> StoreName {
        StoreName::parse(raw).expect("valid name")
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  Acme  ").as_str(), "Acme");
        assert_eq!(StoreName::parse("   "), Err(InvalidValue::Empty));
        assert!(StoreName::parse(&"x".repeat(100)).is_ok());
        assert_eq!(
            StoreName::parse(&"é".repeat(101)),
            Err(InvalidValue::TooLong { max: 100 })
        );
        assert_eq!(
            StoreName::parse("a\u{0}b"),
            Err(InvalidValue::ControlCharacters)
        );
    }

    #[test]
    fn slugs_come_from_names_and_number_their_collisions() {
        assert_eq!(
            Slug::base_for(&name("Café Ünique & Co.")).as_str(),
            "cafe-unique-co"
        );
        assert_eq!(Slug::base_for(&name("!!!")).as_str(), "store");
        assert_eq!(Slug::candidate(&name("Acme"), 3).as_str(), "acme-3");
        assert!(Slug::candidate(&name("Acme"), 3).belongs_to(&name("ACME")));
        assert!(!Slug::from_recorded("acme-1".into()).belongs_to(&name("Acme")));
        assert!(!Slug::from_recorded("acme-02".into()).belongs_to(&name("Acme")));
        assert!(!Slug::from_recorded("acme-shop".into()).belongs_to(&name("Acme")));
        let long = Slug::base_for(&name(&"word ".repeat(20)));
        assert!(long.as_str().len() <= 60 && !long.as_str().ends_with('-'));
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").map(|e| e.as_str().to_owned()),
            Ok("ada@example.com".to_owned())
        );
        assert_eq!(Email::parse("ada"), Err(InvalidValue::NotAnEmail));
        assert_eq!(Email::parse("ada@localhost"), Err(InvalidValue::NotAnEmail));
        assert_eq!(
            Email::parse("Ada <ada@example.com>"),
            Err(InvalidValue::NotAnEmail)
        );
    }

    #[test]
    fn currencies_are_iso_codes() {
        assert_eq!(
            Currency::parse("eur").map(|c| c.as_str().to_owned()),
            Ok("EUR".into())
        );
        assert_eq!(Currency::parse("EURO"), Err(InvalidValue::UnknownCurrency));
        assert_eq!(Currency::parse("ABC"), Err(InvalidValue::UnknownCurrency));
    }
}
