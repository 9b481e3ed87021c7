use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use schemas::product::{InventoryAdjusted, InventoryLowStock, ProductUpdated};

use super::*;

fn store() -> Uuid {
    Uuid::from_u128(1)
}

fn title(raw: &str) -> ProductTitle {
    ProductTitle::parse(raw).expect("valid title")
}

fn variant_id(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn new_variant(n: u128, sku: Option<&str>, stock: u32) -> NewVariant {
    NewVariant {
        variant_id: variant_id(n),
        name: VariantName::parse(&format!("Variant {n}")).expect("valid"),
        sku: sku.map(|s| Sku::parse(s).expect("valid sku")),
        price: None,
        inventory_count: stock,
        options: vec![(
            OptionText::parse("size").expect("valid"),
            OptionText::parse(&format!("S{n}")).expect("valid"),
        )],
    }
}

fn create(raw_title: &str, variants: Vec<NewVariant>) -> ProductCommand {
    let title = title(raw_title);
    ProductCommand::Create(Box::new(CreateProduct {
        store_id: store(),
        currency: Currency::parse("EUR").expect("valid"),
        slug: Slug::candidate(&title, 1),
        title,
        description: None,
        price: Amount::parse(1999).expect("valid"),
        compare_at_price: None,
        cost: Some(Amount::parse(700).expect("valid")),
        images: vec![],
        status: ProductStatus::Draft,
        seo_title: None,
        seo_description: None,
        tags: vec![
            Tag::parse("Socks").expect("valid"),
            Tag::parse("socks").expect("valid"),
        ],
        category_ids: vec![],
        variants,
    }))
}

fn given(command: &ProductCommand) -> Product {
    run(Product::Unborn, command)
}

fn run(state: Product, command: &ProductCommand) -> Product {
    let events = decide(&state, command).expect("accepted");
    events.iter().fold(state, evolve)
}

fn data(product: &Product) -> &ProductData {
    product.existing().expect("exists")
}

fn adjust(n: u128, delta: i64, threshold: u32) -> ProductCommand {
    ProductCommand::AdjustInventory {
        variant_id: variant_id(n),
        delta,
        reason: Reason::parse("sale").expect("valid"),
        low_stock_threshold: threshold,
    }
}

#[test]
fn given_nothing_when_created_then_the_whole_product_is_in_the_event() {
    let product = given(&create(
        "Sunny Sock",
        vec![new_variant(1, Some("SOCK-1"), 4)],
    ));
    let product = data(&product);
    assert_eq!(product.slug, "sunny-sock");
    assert_eq!(product.status, "draft");
    assert_eq!(product.price.currency, "EUR");
    assert_eq!(
        product.tags,
        vec!["socks"],
        "tags are lower-cased and kept once"
    );
    assert_eq!(product.variants[0].inventory_count, 4);
}

#[test]
fn given_two_variants_with_one_sku_in_any_case_when_created_then_refused() {
    let command = create(
        "Sock",
        vec![
            new_variant(1, Some("ab-1"), 0),
            new_variant(2, Some("AB-1"), 0),
        ],
    );
    assert_eq!(
        decide(&Product::Unborn, &command),
        Err(ProductError::DuplicateSku("AB-1".into()))
    );
}

#[test]
fn given_a_product_when_renamed_then_slug_follows_and_changed_names_the_fields() {
    let state = given(&create("Sunny Sock", vec![]));
    let new_title = title("Moon Sock");
    let update = ProductCommand::Update(Box::new(UpdateProduct {
        slug: Some(Slug::candidate(&new_title, 2)),
        title: Some(new_title),
        price: Some(Amount::parse(2500).expect("valid")),
        ..UpdateProduct::default()
    }));
    let events = decide(&state, &update).expect("updates");
    let [Event::ProductUpdated(ProductUpdated { product, changed })] = events.as_slice() else {
        panic!("one product.updated expected, got {events:?}");
    };
    assert_eq!(changed, &vec!["title", "slug", "price"]);
    assert_eq!(product.slug, "moon-sock-2");
    assert_eq!(product.price.amount, 2500);
    let without_slug = ProductCommand::Update(Box::new(UpdateProduct {
        title: Some(title("Star Sock")),
        ..UpdateProduct::default()
    }));
    assert_eq!(
        decide(&state, &without_slug),
        Err(ProductError::SlugMismatch)
    );
}

#[test]
fn given_a_product_when_an_update_changes_nothing_then_no_event() {
    let state = given(&create("Sock", vec![]));
    let update = ProductCommand::Update(Box::new(UpdateProduct {
        title: Some(title("Sock")),
        price: Some(Amount::parse(1999).expect("valid")),
        description: Change::Clear,
        ..UpdateProduct::default()
    }));
    assert_eq!(decide(&state, &update), Ok(vec![]));
}

#[test]
fn given_a_draft_when_published_then_active_and_publishing_again_is_refused() {
    let published = run(given(&create("Sock", vec![])), &ProductCommand::Publish);
    assert_eq!(data(&published).status, "active");
    assert_eq!(
        decide(&published, &ProductCommand::Publish),
        Err(ProductError::AlreadyPublished)
    );
    let archived = run(published, &ProductCommand::Archive);
    assert_eq!(data(&archived).status, "archived");
    assert_eq!(
        decide(&archived, &ProductCommand::Archive),
        Err(ProductError::AlreadyArchived)
    );
}

#[test]
fn given_an_update_with_a_status_then_the_status_event_follows_the_update() {
    let state = given(&create("Sock", vec![]));
    let update = ProductCommand::Update(Box::new(UpdateProduct {
        seo_title: Change::Set(SeoTitle::parse("Best sock").expect("valid")),
        status: Some(ProductStatus::Active),
        ..UpdateProduct::default()
    }));
    let events = decide(&state, &update).expect("updates");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event_type(), "product.published");
    assert_eq!(data(&events.iter().fold(state, evolve)).status, "active");
}

#[test]
fn given_stock_when_decremented_below_zero_then_refused_with_what_is_left() {
    let state = given(&create("Sock", vec![new_variant(1, None, 2)]));
    assert_eq!(
        decide(&state, &adjust(1, -3, 0)),
        Err(ProductError::InsufficientStock { available: 2 })
    );
    let after = run(state, &adjust(1, -2, 0));
    assert_eq!(data(&after).variants[0].inventory_count, 0);
    assert_eq!(
        decide(&after, &adjust(9, 1, 0)),
        Err(ProductError::VariantNotFound)
    );
}

#[test]
fn given_stock_above_the_threshold_when_it_crosses_then_low_stock_is_raised_once() {
    let state = given(&create("Sock", vec![new_variant(1, Some("S-1"), 10)]));
    let events = decide(&state, &adjust(1, -7, 3)).expect("adjusts");
    assert_eq!(
        events,
        vec![
            Event::InventoryAdjusted(InventoryAdjusted {
                variant_id: variant_id(1),
                delta: -7,
                reason: "sale".into(),
                inventory_count: 3,
            }),
            Event::InventoryLowStock(InventoryLowStock {
                variant_id: variant_id(1),
                sku: Some("S-1".into()),
                inventory_count: 3,
                threshold: 3,
            }),
        ]
    );
    let low = events.iter().fold(state, evolve);
    assert_eq!(decide(&low, &adjust(1, -1, 3)).map(|e| e.len()), Ok(1));
    let restocked = run(low, &adjust(1, 5, 3));
    assert_eq!(
        decide(&restocked, &adjust(1, -6, 3)).map(|e| e.len()),
        Ok(2)
    );
}

#[test]
fn given_variants_when_added_updated_and_removed_then_skus_stay_unique() {
    let state = given(&create("Sock", vec![new_variant(1, Some("A"), 0)]));
    assert_eq!(
        decide(
            &state,
            &ProductCommand::AddVariant(new_variant(2, Some("a"), 0))
        ),
        Err(ProductError::DuplicateSku("a".into()))
    );
    let state = run(
        state,
        &ProductCommand::AddVariant(new_variant(2, Some("B"), 0)),
    );
    let rename_sku = ProductCommand::UpdateVariant {
        variant_id: variant_id(2),
        changes: VariantChanges {
            sku: Change::Set(Sku::parse("A").expect("valid")),
            ..VariantChanges::default()
        },
    };
    assert_eq!(
        decide(&state, &rename_sku),
        Err(ProductError::DuplicateSku("A".into()))
    );
    let state = run(
        state,
        &ProductCommand::RemoveVariant {
            variant_id: variant_id(1),
        },
    );
    let state = run(state, &rename_sku);
    assert_eq!(
        held_keys(&state),
        BTreeSet::from([HeldKey::Slug("sock".into()), HeldKey::Sku("A".into())])
    );
}

#[test]
fn given_prices_when_adjusted_by_percent_then_product_and_variant_prices_follow() {
    let mut priced = new_variant(1, None, 0);
    priced.price = Some(Amount::parse(1000).expect("valid"));
    let state = given(&create("Sock", vec![priced, new_variant(2, None, 0)]));
    let after = run(
        state.clone(),
        &ProductCommand::AdjustPrices(PriceAdjustment::BasisPoints(-1050)),
    );
    let after = data(&after);
    assert_eq!(after.price.amount, 1789, "1999 × 0.895 = 1789.1");
    assert_eq!(
        after.variants[0].price.as_ref().map(|p| p.amount),
        Some(895)
    );
    assert_eq!(after.variants[1].price, None);
    assert_eq!(
        decide(
            &state,
            &ProductCommand::AdjustPrices(PriceAdjustment::Amount(-2000))
        ),
        Err(ProductError::PriceOutOfRange)
    );
}

#[test]
fn given_tags_when_added_and_removed_then_each_is_kept_once() {
    let state = given(&create("Sock", vec![]));
    let tag = |raw: &str| Tag::parse(raw).expect("valid");
    let state = run(
        state,
        &ProductCommand::AddTags(vec![tag("Wool"), tag("socks")]),
    );
    assert_eq!(data(&state).tags, vec!["socks", "wool"]);
    assert_eq!(
        decide(&state, &ProductCommand::AddTags(vec![tag("wool")])),
        Ok(vec![])
    );
    let state = run(state, &ProductCommand::RemoveTags(vec![tag("SOCKS")]));
    assert_eq!(data(&state).tags, vec!["wool"]);
}

/// A store's products with the reservations the log would hold for them.
#[derive(Default)]
struct Catalog {
    products: BTreeMap<usize, Product>,
    reserved: BTreeMap<HeldKey, usize>,
}

impl Catalog {
    /// Runs `command` on product `index` like the command API does: decide, then
    /// append only if every newly held key is free (the log's reservation).
    fn execute(&mut self, index: usize, command: &ProductCommand) -> Result<(), String> {
        let before = self.products.get(&index).cloned().unwrap_or_default();
        let events = decide(&before, command).map_err(|e| e.to_string())?;
        for event in &events {
            if let Event::InventoryAdjusted(adjusted) = event {
                let was = before
                    .existing()
                    .and_then(|p| {
                        p.variants
                            .iter()
                            .find(|v| v.variant_id == adjusted.variant_id)
                    })
                    .map(|v| i64::from(v.inventory_count))
                    .expect("adjusted variant exists");
                assert_eq!(i64::from(adjusted.inventory_count), was + adjusted.delta);
            }
        }
        let after = events.iter().fold(before.clone(), evolve);
        let (held_before, held_after) = (held_keys(&before), held_keys(&after));
        if held_after
            .difference(&held_before)
            .any(|key| self.reserved.contains_key(key))
        {
            return Err("taken".into());
        }
        for key in held_before.difference(&held_after) {
            self.reserved.remove(key);
        }
        for key in held_after.difference(&held_before) {
            self.reserved.insert(key.clone(), index);
        }
        self.products.insert(index, after);
        Ok(())
    }

    fn first_free_slug(&self, title: &ProductTitle) -> Slug {
        (1..)
            .map(|n| Slug::candidate(title, n))
            .find(|slug| {
                !self
                    .reserved
                    .contains_key(&HeldKey::Slug(slug.as_str().to_owned()))
            })
            .expect("some candidate is free")
    }
}

#[derive(Debug, Clone)]
enum Step {
    Create { title: usize, sku: usize },
    Rename { title: usize },
    AddVariant { variant: u128, sku: usize },
    ChangeSku { variant: u128, sku: usize },
    Remove { variant: u128 },
    Adjust { variant: u128, delta: i64 },
}

const TITLES: [&str; 3] = ["Sock", "SOCK", "Hat"];
const SKUS: [&str; 4] = ["A-1", "a-1", "B-2", "C-3"];

fn step() -> impl Strategy<Value = (usize, Step)> {
    let step = prop_oneof![
        (0..3usize, 0..4usize).prop_map(|(title, sku)| Step::Create { title, sku }),
        (0..3usize).prop_map(|title| Step::Rename { title }),
        (0..4u128, 0..4usize).prop_map(|(variant, sku)| Step::AddVariant { variant, sku }),
        (0..4u128, 0..4usize).prop_map(|(variant, sku)| Step::ChangeSku { variant, sku }),
        (0..4u128).prop_map(|variant| Step::Remove { variant }),
        (0..4u128, -5i64..5).prop_map(|(variant, delta)| Step::Adjust { variant, delta }),
    ];
    (0..4usize, step)
}

fn command(catalog: &Catalog, index: usize, step: &Step) -> ProductCommand {
    let sku = |n: usize| Some(Sku::parse(SKUS[n]).expect("valid"));
    // Variant ids are per product so that two products' variants never collide.
    let id = |variant: u128| variant_id(index as u128 * 10 + variant);
    match step {
        Step::Create { title: t, sku: s } => {
            let title = title(TITLES[*t]);
            let mut variant = new_variant(0, SKUS.get(*s).copied(), 3);
            variant.variant_id = id(0);
            variant.sku = sku(*s);
            ProductCommand::Create(Box::new(CreateProduct {
                slug: catalog.first_free_slug(&title),
                ..match create(TITLES[*t], vec![variant]) {
                    ProductCommand::Create(create) => *create,
                    _ => unreachable!("create builds a create"),
                }
            }))
        }
        Step::Rename { title: t } => {
            let title = title(TITLES[*t]);
            ProductCommand::Update(Box::new(UpdateProduct {
                slug: Some(catalog.first_free_slug(&title)),
                title: Some(title),
                ..UpdateProduct::default()
            }))
        }
        Step::AddVariant { variant, sku: s } => {
            let mut new = new_variant(*variant, None, 1);
            new.variant_id = id(*variant);
            new.sku = sku(*s);
            ProductCommand::AddVariant(new)
        }
        Step::ChangeSku { variant, sku: s } => ProductCommand::UpdateVariant {
            variant_id: id(*variant),
            changes: VariantChanges {
                sku: Change::Set(Sku::parse(SKUS[*s]).expect("valid")),
                ..VariantChanges::default()
            },
        },
        Step::Remove { variant } => ProductCommand::RemoveVariant {
            variant_id: id(*variant),
        },
        Step::Adjust { variant, delta } => ProductCommand::AdjustInventory {
            variant_id: id(*variant),
            delta: *delta,
            reason: Reason::parse("count").expect("valid"),
            low_stock_threshold: 1,
        },
    }
}

fn reserve(items: &[(u128, u32)]) -> ProductCommand {
    ProductCommand::ReserveStock {
        order_id: Uuid::from_u128(7),
        items: items
            .iter()
            .map(|&(n, quantity)| schemas::order::ItemQuantity {
                variant_id: variant_id(n),
                quantity,
            })
            .collect(),
        low_stock_threshold: 2,
    }
}

fn on_sale(variants: Vec<NewVariant>) -> Product {
    run(given(&create("Sock", variants)), &ProductCommand::Publish)
}

#[test]
fn given_a_draft_product_when_an_order_reserves_stock_then_it_is_not_for_sale() {
    let draft = given(&create("Sock", vec![new_variant(1, None, 5)]));
    assert_eq!(
        decide(&draft, &reserve(&[(1, 1)])),
        Err(ProductError::NotForSale)
    );
}

#[test]
fn given_stock_when_an_order_reserves_more_than_there_is_then_refused_and_nothing_moves() {
    let product = on_sale(vec![new_variant(1, None, 5), new_variant(2, None, 1)]);
    assert_eq!(
        decide(&product, &reserve(&[(1, 1), (2, 2)])),
        Err(ProductError::InsufficientStock { available: 1 })
    );
    assert_eq!(
        decide(&product, &reserve(&[(9, 1)])),
        Err(ProductError::VariantNotFound)
    );
}

#[test]
fn given_stock_when_an_order_reserves_units_then_they_leave_stock_and_low_stock_is_raised() {
    let product = on_sale(vec![new_variant(1, Some("S-1"), 5)]);
    let events = decide(&product, &reserve(&[(1, 2), (1, 1)])).expect("in stock");
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(&events[0], Event::InventoryReserved(r)
        if r.lines.len() == 1 && r.lines[0].quantity == 3 && r.lines[0].inventory_count == 2));
    assert!(matches!(&events[1], Event::InventoryLowStock(low) if low.inventory_count == 2));
    let reserved = events.iter().fold(product, evolve);
    assert_eq!(data(&reserved).variants[0].inventory_count, 2);
}

#[test]
fn given_reserved_units_when_released_then_they_return_except_to_removed_variants() {
    let product = on_sale(vec![new_variant(1, None, 5), new_variant(2, None, 5)]);
    let reserved = run(product, &reserve(&[(1, 2), (2, 2)]));
    let removed = run(
        reserved,
        &ProductCommand::RemoveVariant {
            variant_id: variant_id(2),
        },
    );
    let release = ProductCommand::ReleaseStock {
        order_id: Uuid::from_u128(7),
        items: vec![
            schemas::order::ItemQuantity {
                variant_id: variant_id(1),
                quantity: 2,
            },
            schemas::order::ItemQuantity {
                variant_id: variant_id(2),
                quantity: 2,
            },
        ],
        reason: Reason::parse("expired").expect("valid"),
    };
    let released = run(removed, &release);
    assert_eq!(data(&released).variants.len(), 1);
    assert_eq!(data(&released).variants[0].inventory_count, 5);
}

proptest! {
    #[test]
    fn stock_never_goes_negative_and_slugs_and_skus_stay_unique_in_the_store(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let mut catalog = Catalog::default();
        for (index, step) in &steps {
            let command = command(&catalog, *index, step);
            let _ = catalog.execute(*index, &command);
            let mut seen = BTreeSet::new();
            for product in catalog.products.values() {
                for key in held_keys(product) {
                    prop_assert!(seen.insert(key.clone()), "{key:?} held twice");
                }
                if let Some(product) = product.existing() {
                    prop_assert!(Slug::from_recorded(product.slug.clone()).belongs_to(&title(&product.title)));
                }
            }
            let reserved: BTreeSet<HeldKey> = catalog.reserved.keys().cloned().collect();
            prop_assert_eq!(seen, reserved, "reservations match what the products hold");
        }
    }
}
