//! Catalog request bodies into the domain's value objects, every field at fault
//! reported with its JSON path. Money must be in the store's currency.

use api_core::{ApiError, FieldError};
use domain::{
    Amount, Description, GroupName, ImageUrl, InvalidValue, OptionText, ProductTitle,
    SeoDescription, SeoTitle, Sku, Tag, VariantName,
    catalog::GroupChanges,
    product::{NewVariant, ProductStatus, UpdateProduct, VariantChanges},
    store::Change,
};
use schemas::api::products::{
    CreateProductRequest, MoneyBody, NewVariantRequest, OptionBody, UpdateProductRequest,
    UpdateVariantRequest,
};
use uuid::Uuid;

use crate::fields::Fields;

const MAX_IMAGES: usize = 50;
const MAX_TAGS: usize = 50;
const MAX_CATEGORIES: usize = 50;
const MAX_OPTIONS: usize = 10;
/// Stock counts above this are surely a typo.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// A create request, parsed; the store's facts and the slug are added by the caller.
pub struct NewProduct {
    pub title: ProductTitle,
    pub description: Option<Description>,
    pub price: Amount,
    pub compare_at_price: Option<Amount>,
    pub cost: Option<Amount>,
    pub images: Vec<ImageUrl>,
    pub status: ProductStatus,
    pub seo_title: Option<SeoTitle>,
    pub seo_description: Option<SeoDescription>,
    pub tags: Vec<Tag>,
    pub category_ids: Vec<Uuid>,
    pub variants: Vec<NewVariant>,
}

/// The currency of a request that carries no money: any amount in it is refused.
pub const NO_MONEY: &str = "";

/// One request's parser: its field errors, and the currency its money must be in.
pub struct Parser<'a> {
    pub fields: Fields,
    currency: &'a str,
}

impl<'a> Parser<'a> {
    pub fn new(currency: &'a str) -> Self {
        Self {
            fields: Fields::default(),
            currency,
        }
    }

    pub fn text<T>(
        &mut self,
        field: &str,
        raw: &str,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<T> {
        self.fields.check(field, parse(raw))
    }

    /// An optional text field where absent or empty means none.
    pub fn optional<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<Option<T>> {
        match raw.map(str::trim).filter(|text| !text.is_empty()) {
            None => Some(None),
            Some(text) => self.fields.check(field, parse(text)).map(Some),
        }
    }

    /// A field of a partial update: absent keeps it, `null` or empty clears it.
    pub fn change<T>(
        &mut self,
        field: &str,
        raw: &Option<Option<String>>,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<Change<T>> {
        match raw {
            None => Some(Change::Keep),
            Some(None) => Some(Change::Clear),
            Some(Some(text)) if text.trim().is_empty() => Some(Change::Clear),
            Some(Some(text)) => self.fields.check(field, parse(text)).map(Change::Set),
        }
    }

    pub fn money(&mut self, field: &str, money: &MoneyBody) -> Option<Amount> {
        let amount = self
            .fields
            .check(&format!("{field}.amount"), Amount::parse(money.amount));
        if !money.currency.trim().eq_ignore_ascii_case(self.currency) {
            self.fields.push(FieldError::new(
                format!("{field}.currency"),
                "currency_mismatch",
                format!("must be the store's currency, {}", self.currency),
            ));
            return None;
        }
        amount
    }

    pub fn optional_money(
        &mut self,
        field: &str,
        money: Option<&MoneyBody>,
    ) -> Option<Option<Amount>> {
        match money {
            None => Some(None),
            Some(money) => self.money(field, money).map(Some),
        }
    }

    pub fn money_change(
        &mut self,
        field: &str,
        raw: &Option<Option<MoneyBody>>,
    ) -> Option<Change<Amount>> {
        match raw {
            None => Some(Change::Keep),
            Some(None) => Some(Change::Clear),
            Some(Some(money)) => self.money(field, money).map(Change::Set),
        }
    }

    /// Every entry of a list, each checked; `None` when any failed.
    pub fn list<T>(
        &mut self,
        field: &str,
        raw: &[String],
        max: usize,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<Vec<T>> {
        if raw.len() > max {
            self.fields
                .check::<()>(field, Err(InvalidValue::TooMany { max }));
            return None;
        }
        let parsed: Vec<Option<T>> = raw
            .iter()
            .enumerate()
            .map(|(i, item)| self.fields.check(&format!("{field}[{i}]"), parse(item)))
            .collect();
        parsed.into_iter().collect()
    }

    pub fn status(
        &mut self,
        field: &str,
        raw: &str,
        allowed: &[ProductStatus],
    ) -> Option<ProductStatus> {
        let status = ProductStatus::parse(raw.trim()).filter(|s| allowed.contains(s));
        if status.is_none() {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            self.fields.push(FieldError::new(
                field,
                "invalid_status",
                format!("must be one of: {}", names.join(", ")),
            ));
        }
        status
    }

    fn options(
        &mut self,
        field: &str,
        raw: &[OptionBody],
    ) -> Option<Vec<(OptionText, OptionText)>> {
        if raw.len() > MAX_OPTIONS {
            self.fields
                .check::<()>(field, Err(InvalidValue::TooMany { max: MAX_OPTIONS }));
            return None;
        }
        let parsed: Vec<Option<(OptionText, OptionText)>> = raw
            .iter()
            .enumerate()
            .map(|(i, option)| {
                let name = self.text(
                    &format!("{field}[{i}].name"),
                    &option.name,
                    OptionText::parse,
                );
                let value = self.text(
                    &format!("{field}[{i}].value"),
                    &option.value,
                    OptionText::parse,
                );
                Some((name?, value?))
            })
            .collect();
        parsed.into_iter().collect()
    }

    pub fn stock(&mut self, field: &str, raw: Option<i64>) -> Option<u32> {
        let raw = raw.unwrap_or(0);
        self.fields.check(
            field,
            u32::try_from(raw)
                .ok()
                .filter(|_| raw <= MAX_STOCK)
                .ok_or(InvalidValue::OutOfRange { max: MAX_STOCK }),
        )
    }

    /// A new variant; `prefix` is its place in the body (`variants[2].`, or empty).
    pub fn new_variant(&mut self, prefix: &str, raw: &NewVariantRequest) -> Option<NewVariant> {
        let name = self.text(&format!("{prefix}name"), &raw.name, VariantName::parse);
        let sku = self.optional(&format!("{prefix}sku"), raw.sku.as_deref(), Sku::parse);
        let price = self.optional_money(&format!("{prefix}price"), raw.price.as_ref());
        let inventory_count = self.stock(&format!("{prefix}inventory_count"), raw.inventory_count);
        let options = self.options(&format!("{prefix}options"), &raw.options);
        Some(NewVariant {
            variant_id: Uuid::now_v7(),
            name: name?,
            sku: sku?,
            price: price?,
            inventory_count: inventory_count?,
            options: options?,
        })
    }

    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        self.fields.finish(value)
    }
}

pub fn new_product(request: &CreateProductRequest, currency: &str) -> Result<NewProduct, ApiError> {
    let mut p = Parser::new(currency);
    let title = p.text("title", &request.title, ProductTitle::parse);
    let description = p.optional(
        "description",
        request.description.as_deref(),
        Description::parse,
    );
    let price = p.money("price", &request.price);
    let compare_at_price = p.optional_money("compare_at_price", request.compare_at_price.as_ref());
    let cost = p.optional_money("cost", request.cost.as_ref());
    let images = p.list("images", &request.images, MAX_IMAGES, ImageUrl::parse);
    let status = match request.status.as_deref() {
        None => Some(ProductStatus::Draft),
        Some(raw) => p.status(
            "status",
            raw,
            &[ProductStatus::Draft, ProductStatus::Active],
        ),
    };
    let seo_title = p.optional("seo_title", request.seo_title.as_deref(), SeoTitle::parse);
    let seo_description = p.optional(
        "seo_description",
        request.seo_description.as_deref(),
        SeoDescription::parse,
    );
    let tags = p.list("tags", &request.tags, MAX_TAGS, Tag::parse);
    let category_ids = category_ids(&mut p, &request.category_ids);
    let variants: Vec<Option<NewVariant>> = request
        .variants
        .iter()
        .enumerate()
        .map(|(i, variant)| p.new_variant(&format!("variants[{i}]."), variant))
        .collect();
    p.finish(|| {
        Some(NewProduct {
            title: title?,
            description: description?,
            price: price?,
            compare_at_price: compare_at_price?,
            cost: cost?,
            images: images?,
            status: status?,
            seo_title: seo_title?,
            seo_description: seo_description?,
            tags: tags?,
            category_ids: category_ids?,
            variants: variants.into_iter().collect::<Option<_>>()?,
        })
    })
}

fn category_ids(p: &mut Parser<'_>, ids: &[Uuid]) -> Option<Vec<Uuid>> {
    if ids.len() > MAX_CATEGORIES {
        p.fields.check::<()>(
            "category_ids",
            Err(InvalidValue::TooMany {
                max: MAX_CATEGORIES,
            }),
        );
        return None;
    }
    Some(ids.to_vec())
}

/// A product update, parsed; the slug for a new title is chosen by the caller.
pub fn product_changes(
    request: &UpdateProductRequest,
    currency: &str,
) -> Result<UpdateProduct, ApiError> {
    let mut p = Parser::new(currency);
    let title = request
        .title
        .as_deref()
        .map(|raw| p.text("title", raw, ProductTitle::parse));
    let description = p.change("description", &request.description, Description::parse);
    let price = request.price.as_ref().map(|money| p.money("price", money));
    let compare_at_price = p.money_change("compare_at_price", &request.compare_at_price);
    let cost = p.money_change("cost", &request.cost);
    let images = request
        .images
        .as_ref()
        .map(|images| p.list("images", images, MAX_IMAGES, ImageUrl::parse));
    let status = request.status.as_deref().map(|raw| {
        p.status(
            "status",
            raw,
            &[
                ProductStatus::Draft,
                ProductStatus::Active,
                ProductStatus::Archived,
            ],
        )
    });
    let seo_title = p.change("seo_title", &request.seo_title, SeoTitle::parse);
    let seo_description = p.change(
        "seo_description",
        &request.seo_description,
        SeoDescription::parse,
    );
    let tags = request
        .tags
        .as_ref()
        .map(|tags| p.list("tags", tags, MAX_TAGS, Tag::parse));
    let category_ids = request
        .category_ids
        .as_ref()
        .map(|ids| category_ids(&mut p, ids));
    p.finish(|| {
        Some(UpdateProduct {
            title: title.map_or(Some(None), |t| t.map(Some))?,
            slug: None,
            description: description?,
            price: price.map_or(Some(None), |v| v.map(Some))?,
            compare_at_price: compare_at_price?,
            cost: cost?,
            images: images.map_or(Some(None), |v| v.map(Some))?,
            status: status.map_or(Some(None), |v| v.map(Some))?,
            seo_title: seo_title?,
            seo_description: seo_description?,
            tags: tags.map_or(Some(None), |v| v.map(Some))?,
            category_ids: category_ids.map_or(Some(None), |v| v.map(Some))?,
        })
    })
}

pub fn variant_changes(
    request: &UpdateVariantRequest,
    currency: &str,
) -> Result<VariantChanges, ApiError> {
    let mut p = Parser::new(currency);
    let name = request
        .name
        .as_deref()
        .map(|raw| p.text("name", raw, VariantName::parse));
    let sku = p.change("sku", &request.sku, Sku::parse);
    let price = p.money_change("price", &request.price);
    let options = request
        .options
        .as_ref()
        .map(|options| p.options("options", options));
    p.finish(|| {
        Some(VariantChanges {
            name: name.map_or(Some(None), |v| v.map(Some))?,
            sku: sku?,
            price: price?,
            options: options.map_or(Some(None), |v| v.map(Some))?,
        })
    })
}

/// Name and description of a new category or collection.
pub fn group(
    name: &str,
    description: Option<&str>,
) -> Result<(GroupName, Option<Description>), ApiError> {
    let mut p = Parser::new(NO_MONEY);
    let name = p.text("name", name, GroupName::parse);
    let description = p.optional("description", description, Description::parse);
    p.finish(|| Some((name?, description?)))
}

/// Name and description changes of a category or collection; the slug is chosen later.
pub fn group_changes(
    name: Option<&str>,
    description: &Option<Option<String>>,
) -> Result<GroupChanges, ApiError> {
    let mut p = Parser::new(NO_MONEY);
    let name = name.map(|raw| p.text("name", raw, GroupName::parse));
    let description = p.change("description", description, Description::parse);
    p.finish(|| {
        Some(GroupChanges {
            name: name.map_or(Some(None), |v| v.map(Some))?,
            slug: None,
            description: description?,
        })
    })
}
