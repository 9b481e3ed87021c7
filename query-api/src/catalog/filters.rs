//! Product list parameters (search, filters, sorting) and the SQL they become. Only the
//! filters a request uses appear in its statement, so each combination gets a plan fit
//! for it instead of one generic plan full of `$n IS NULL OR …`.

use api_core::{ApiError, FieldError, PageRequest};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use utoipa::IntoParams;
use uuid::Uuid;

const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// Words to find in titles and descriptions, an exact SKU, or part of a title word.
    pub q: Option<String>,
    /// `draft`, `active` or `archived` (merchant reads only).
    pub status: Option<String>,
    /// A category id; its subcategories' products are included.
    pub category: Option<Uuid>,
    /// A collection id; the list then follows the collection's order unless `sort` says
    /// otherwise.
    pub collection: Option<Uuid>,
    pub tag: Option<String>,
    /// Minor units, inclusive.
    pub min_price: Option<i64>,
    /// Minor units, inclusive.
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    /// `newest` (default), `price_asc`, `price_desc`, `title`, `relevance` (default with
    /// `q`) or `manual` (default with `collection`).
    pub sort: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAscending,
    PriceDescending,
    Title,
    Relevance,
    Manual,
}

impl Sort {
    /// The ORDER BY of the inner query and of the outer one that reads its rows.
    fn order_by(self) -> &'static str {
        match self {
            Self::Newest => "p.created_at DESC, p.id DESC",
            Self::PriceAscending => "p.price_amount ASC, p.id ASC",
            Self::PriceDescending => "p.price_amount DESC, p.id DESC",
            Self::Title => "lower(p.title) ASC, p.id ASC",
            Self::Relevance => "rank DESC, p.created_at DESC, p.id DESC",
            Self::Manual => "manual_position ASC, p.id ASC",
        }
    }
}

/// What a product list asks for, checked.
#[derive(Debug, Clone)]
pub struct ProductFilters {
    pub page: PageRequest,
    search: Option<String>,
    status: Option<String>,
    category: Option<Uuid>,
    collection: Option<Uuid>,
    tag: Option<String>,
    min_price: Option<i64>,
    max_price: Option<i64>,
    in_stock: Option<bool>,
    sort: Sort,
}

fn invalid(field: &str, code: &str, message: &str) -> FieldError {
    FieldError::new(field, code, message)
}

impl ProductFilters {
    /// `public` reads see active products only and may not ask for another status.
    pub fn parse(query: &ProductQuery, public: bool) -> Result<Self, ApiError> {
        let page = PageRequest::parse(query.page, query.per_page);
        let mut errors = Vec::new();
        let search = query
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if search
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
        {
            errors.push(invalid("q", "too_long", "must be at most 200 characters"));
        }
        let tag = match query.tag.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => match domain::Tag::parse(raw) {
                Ok(tag) => Some(tag.as_str().to_owned()),
                Err(_) => {
                    errors.push(invalid(
                        "tag",
                        "invalid_tag",
                        "must be a tag: at most 50 characters, no control characters",
                    ));
                    None
                }
            },
        };
        let status = match query.status.as_deref() {
            None => public.then(|| "active".to_owned()),
            Some(_) if public => {
                errors.push(invalid(
                    "status",
                    "not_allowed",
                    "storefronts list active products only",
                ));
                None
            }
            Some(status @ ("draft" | "active" | "archived")) => Some(status.to_owned()),
            Some(_) => {
                errors.push(invalid(
                    "status",
                    "invalid_choice",
                    "must be `draft`, `active` or `archived`",
                ));
                None
            }
        };
        for (field, price) in [
            ("min_price", query.min_price),
            ("max_price", query.max_price),
        ] {
            if price.is_some_and(|p| p < 0) {
                errors.push(invalid(field, "out_of_range", "must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (query.min_price, query.max_price)
            && min > max
        {
            errors.push(invalid(
                "max_price",
                "out_of_range",
                "must not be below min_price",
            ));
        }
        let sort = match query.sort.as_deref() {
            None if search.is_some() => Some(Sort::Relevance),
            None if query.collection.is_some() => Some(Sort::Manual),
            None | Some("newest") => Some(Sort::Newest),
            Some("price_asc") => Some(Sort::PriceAscending),
            Some("price_desc") => Some(Sort::PriceDescending),
            Some("title") => Some(Sort::Title),
            Some("relevance") if search.is_some() => Some(Sort::Relevance),
            Some("manual") if query.collection.is_some() => Some(Sort::Manual),
            Some("relevance") => {
                errors.push(invalid("sort", "invalid_choice", "`relevance` needs `q`"));
                None
            }
            Some("manual") => {
                errors.push(invalid(
                    "sort",
                    "invalid_choice",
                    "`manual` needs `collection`",
                ));
                None
            }
            Some(_) => {
                errors.push(invalid(
                    "sort",
                    "invalid_choice",
                    "must be `newest`, `price_asc`, `price_desc`, `title`, `relevance` or `manual`",
                ));
                None
            }
        };
        let page = match page {
            Ok(page) => Some(page),
            Err(ApiError::Validation(fields)) => {
                errors.extend(fields);
                None
            }
            Err(other) => return Err(other),
        };
        match (page, sort) {
            (Some(page), Some(sort)) if errors.is_empty() => Ok(Self {
                page,
                search,
                status,
                category: query.category,
                collection: query.collection,
                tag,
                min_price: query.min_price,
                max_price: query.max_price,
                in_stock: query.in_stock,
                sort,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }

    /// Whether this is a list without a search.
    pub fn is_plain(&self) -> bool {
        self.search.is_none()
    }

    /// A canonical form of the request, for cache keys.
    pub fn cache_key(&self) -> String {
        format!("{self:?}")
    }
}

/// The ids a category or collection filter stands for, looked up first so that the
/// product query filters by plain arrays.
pub struct Membership {
    category_ids: Option<Vec<Uuid>>,
    collection_products: Option<Vec<Uuid>>,
}

impl Membership {
    pub async fn load(
        pool: &PgPool,
        store_id: Uuid,
        filters: &ProductFilters,
    ) -> Result<Self, ApiError> {
        let category_ids = match filters.category {
            None => None,
            Some(category) => Some(
                sqlx::query_scalar(
                    "SELECT id FROM catalog_categories WHERE store_id = $1 AND NOT deleted \
                     AND (id = $2 OR parent_id = $2)",
                )
                .bind(store_id)
                .bind(category)
                .fetch_all(pool)
                .await
                .map_err(ApiError::internal)?,
            ),
        };
        let collection_products = match filters.collection {
            None => None,
            Some(collection) => Some(
                sqlx::query_scalar::<_, Vec<Uuid>>(
                    "SELECT product_ids FROM catalog_collections WHERE id = $1 AND store_id = $2 \
                     AND NOT deleted",
                )
                .bind(collection)
                .bind(store_id)
                .fetch_optional(pool)
                .await
                .map_err(ApiError::internal)?
                .unwrap_or_default(),
            ),
        };
        Ok(Self {
            category_ids,
            collection_products,
        })
    }
}

/// The columns of a product row, for the inner query.
macro_rules! product_columns {
    () => {
        "p.id, p.store_id, p.title, p.slug, p.description, p.price_amount, p.compare_at_amount, \
         p.cost_amount, p.currency, p.images, p.status, p.seo_title, p.seo_description, p.tags, \
         p.category_ids, p.variants, p.inventory_total, p.in_stock, p.version, p.created_at, \
         p.updated_at"
    };
}

/// What the outer query adds to each row of a page: live categories and collections.
macro_rules! membership_columns {
    () => {
        "ARRAY(SELECT u.id FROM unnest(p.category_ids) WITH ORDINALITY AS u(id, n) \
         JOIN catalog_categories c ON c.id = u.id AND NOT c.deleted ORDER BY u.n) AS live_category_ids, \
         ARRAY(SELECT c.id FROM catalog_collections c WHERE c.product_ids @> ARRAY[p.id] \
         AND c.store_id = p.store_id AND NOT c.deleted ORDER BY c.name, c.id) AS collection_ids"
    };
}

/// One product by id within a store, shaped like a row of a page.
pub const PRODUCT_BY_ID: &str = concat!(
    "SELECT p.*, ",
    membership_columns!(),
    " FROM (SELECT ",
    product_columns!(),
    ", NULL::bigint AS total FROM catalog_products p WHERE p.id = $1 AND p.store_id = $2) p"
);

/// One active product by slug within a store, shaped like a row of a page.
pub const ACTIVE_PRODUCT_BY_SLUG: &str = concat!(
    "SELECT p.*, ",
    membership_columns!(),
    " FROM (SELECT ",
    product_columns!(),
    ", NULL::bigint AS total FROM catalog_products p WHERE p.store_id = $1 AND p.slug = $2 \
     AND p.status = 'active' ORDER BY p.updated_at DESC LIMIT 1) p"
);

/// `FROM` the store's products `WHERE` the filters hold. A search's tsquery is a
/// function in `FROM`, so it is parsed and stemmed once, not once per row.
fn push_from_where(
    query: &mut QueryBuilder<Postgres>,
    store_id: Uuid,
    filters: &ProductFilters,
    membership: &Membership,
) {
    query.push(" FROM catalog_products p");
    if let Some(search) = &filters.search {
        query
            .push(", websearch_to_tsquery('english', ")
            .push_bind(search.clone())
            .push(") AS words");
    }
    query.push(" WHERE p.store_id = ").push_bind(store_id);
    push_conditions(query, filters, membership);
}

/// Conditions after `p.store_id = …`.
fn push_conditions(
    query: &mut QueryBuilder<Postgres>,
    filters: &ProductFilters,
    membership: &Membership,
) {
    if let Some(status) = &filters.status {
        query.push(" AND p.status = ").push_bind(status.clone());
    }
    if let Some(ids) = &membership.category_ids {
        query.push(" AND p.category_ids && ").push_bind(ids.clone());
    }
    if let Some(ids) = &membership.collection_products {
        query
            .push(" AND p.id = ANY(")
            .push_bind(ids.clone())
            .push(")");
    }
    if let Some(tag) = &filters.tag {
        query
            .push(" AND p.tags @> ARRAY[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(min) = filters.min_price {
        query.push(" AND p.price_amount >= ").push_bind(min);
    }
    if let Some(max) = filters.max_price {
        query.push(" AND p.price_amount <= ").push_bind(max);
    }
    if let Some(in_stock) = filters.in_stock {
        query.push(" AND p.in_stock = ").push_bind(in_stock);
    }
    if let Some(search) = &filters.search {
        // Words (stemmed) in title or description, an exact SKU, or part of the title:
        // each side has its own index that leads with the store.
        query
            .push(" AND (p.search @@ words OR p.skus @> ARRAY[")
            .push_bind(search.to_uppercase())
            .push("]::text[] OR p.title ILIKE ")
            .push_bind(format!("%{}%", escape_like(search)))
            .push(")");
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One page of products: an inner query picks the page (by an index where the sort has
/// one), an outer one adds each row's categories and collections, for its rows only.
pub fn page_query(
    store_id: Uuid,
    filters: &ProductFilters,
    membership: &Membership,
) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new(concat!(
        "SELECT p.*, ",
        membership_columns!(),
        " FROM (SELECT ",
        product_columns!()
    ));
    match filters.sort {
        Sort::Relevance => {
            // Ranking reads every match anyway, so counting them here is nearly free.
            query.push(", count(*) OVER () AS total, ts_rank_cd(p.search, words) AS rank");
        }
        Sort::Manual => {
            query
                .push(", NULL::bigint AS total, array_position(")
                .push_bind(membership.collection_products.clone().unwrap_or_default())
                .push(", p.id) AS manual_position");
        }
        _ => {
            query.push(", NULL::bigint AS total");
        }
    }
    push_from_where(&mut query, store_id, filters, membership);
    query
        .push(" ORDER BY ")
        .push(filters.sort.order_by())
        .push(" LIMIT ")
        .push_bind(filters.page.limit())
        .push(" OFFSET ")
        .push_bind(filters.page.offset())
        .push(") p ORDER BY ")
        .push(filters.sort.order_by());
    query
}

/// How many products match: asked only when a page does not tell (it is full, or past
/// the end), since counting a broad match visits every matching row.
pub fn count_query(
    store_id: Uuid,
    filters: &ProductFilters,
    membership: &Membership,
) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new("SELECT count(*)");
    push_from_where(&mut query, store_id, filters, membership);
    query
}

/// Every matching product, oldest first, for the CSV export.
/// One page of an export: the products after `after` (their `created_at` and id) in
/// creation order, at most `limit`. Each page is its own statement, so the export holds
/// a connection only while a page is read, never while the client is slow to take it.
pub fn export_query(
    store_id: Uuid,
    filters: &ProductFilters,
    membership: &Membership,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new(concat!("SELECT ", product_columns!()));
    push_from_where(&mut query, store_id, filters, membership);
    if let Some((created_at, id)) = after {
        query
            .push(" AND (p.created_at, p.id) > (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query
        .push(" ORDER BY p.created_at, p.id LIMIT ")
        .push_bind(limit);
    query
}
