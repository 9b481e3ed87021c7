use super::*;

fn store() -> Uuid {
    Uuid::from_u128(1)
}

fn details(name: &str) -> GroupDetails {
    let name = GroupName::parse(name).expect("valid name");
    GroupDetails {
        slug: Slug::candidate(&name, 1),
        name,
        description: None,
    }
}

fn category(parent: Option<ParentCategory>) -> Category {
    let events = decide_category(
        &Category::Unborn,
        Uuid::from_u128(10),
        &CategoryCommand::Create {
            store_id: store(),
            details: details("Socks"),
            parent,
        },
    )
    .expect("creates");
    events.iter().fold(Category::Unborn, evolve_category)
}

#[test]
fn given_no_category_when_created_under_a_top_level_parent_then_it_nests() {
    let parent = ParentCategory {
        category_id: Uuid::from_u128(11),
        has_parent: false,
    };
    let Category::Existing(data) = category(Some(parent)) else {
        panic!("not created");
    };
    assert_eq!(data.parent_id, Some(Uuid::from_u128(11)));
    assert_eq!(data.slug, "socks");
}

#[test]
fn given_a_nested_parent_when_nesting_under_it_then_refused() {
    let nested_parent = ParentCategory {
        category_id: Uuid::from_u128(11),
        has_parent: true,
    };
    let command = CategoryCommand::Create {
        store_id: store(),
        details: details("Socks"),
        parent: Some(nested_parent),
    };
    assert_eq!(
        decide_category(&Category::Unborn, Uuid::from_u128(10), &command),
        Err(GroupError::NestedTooDeep)
    );
    let own = CategoryCommand::Update {
        changes: GroupChanges::default(),
        parent: Change::Set(ParentCategory {
            category_id: Uuid::from_u128(10),
            has_parent: false,
        }),
    };
    assert_eq!(
        decide_category(&category(None), Uuid::from_u128(10), &own),
        Err(GroupError::OwnParent)
    );
}

#[test]
fn given_a_category_when_renamed_then_its_slug_must_follow() {
    let name = GroupName::parse("Warm Socks").expect("valid");
    let without_slug = CategoryCommand::Update {
        changes: GroupChanges {
            name: Some(name.clone()),
            ..GroupChanges::default()
        },
        parent: Change::Keep,
    };
    let state = category(None);
    assert_eq!(
        decide_category(&state, Uuid::from_u128(10), &without_slug),
        Err(GroupError::SlugMismatch)
    );
    let with_slug = CategoryCommand::Update {
        changes: GroupChanges {
            slug: Some(Slug::candidate(&name, 2)),
            name: Some(name),
            ..GroupChanges::default()
        },
        parent: Change::Keep,
    };
    let events = decide_category(&state, Uuid::from_u128(10), &with_slug).expect("renames");
    let Category::Existing(after) = events.iter().fold(state, evolve_category) else {
        panic!("gone");
    };
    assert_eq!(
        (after.name.as_str(), after.slug.as_str()),
        ("Warm Socks", "warm-socks-2")
    );
}

#[test]
fn given_a_deleted_category_when_changed_then_not_found() {
    let state = category(None);
    let events =
        decide_category(&state, Uuid::from_u128(10), &CategoryCommand::Delete).expect("deletes");
    let deleted = events.iter().fold(state, evolve_category);
    assert_eq!(
        decide_category(&deleted, Uuid::from_u128(10), &CategoryCommand::Delete),
        Err(GroupError::NotFound)
    );
}

#[test]
fn given_a_collection_when_its_products_are_reordered_then_the_order_is_kept() {
    let (a, b) = (Uuid::from_u128(20), Uuid::from_u128(21));
    let create = CollectionCommand::Create {
        store_id: store(),
        details: details("Summer"),
        product_ids: vec![a, b],
    };
    let events = decide_collection(&Collection::Unborn, &create).expect("creates");
    let state = events.iter().fold(Collection::Unborn, evolve_collection);
    let reorder = CollectionCommand::Update {
        changes: GroupChanges::default(),
        product_ids: Some(vec![b, a]),
    };
    let events = decide_collection(&state, &reorder).expect("reorders");
    let Collection::Existing(after) = events.iter().fold(state.clone(), evolve_collection) else {
        panic!("gone");
    };
    assert_eq!(after.product_ids, vec![b, a]);
    let unchanged = CollectionCommand::Update {
        changes: GroupChanges::default(),
        product_ids: Some(vec![a, b]),
    };
    assert_eq!(decide_collection(&state, &unchanged), Ok(vec![]));
    let repeated = CollectionCommand::Update {
        changes: GroupChanges::default(),
        product_ids: Some(vec![a, a]),
    };
    assert_eq!(
        decide_collection(&state, &repeated),
        Err(GroupError::RepeatedProduct(a))
    );
}
