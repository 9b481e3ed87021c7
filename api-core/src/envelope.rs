use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"data": ..., "error": null}`: every successful response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
    #[schema(value_type = Option<Object>)]
    pub error: Option<()>,
}

/// A page of a list: the envelope plus `total`, `page` and `per_page`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Listed<T> {
    pub data: Vec<T>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<()>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

pub fn data<T: Serialize>(data: T) -> Json<Data<T>> {
    Json(Data { data, error: None })
}

pub fn listed<T: Serialize>(
    items: Vec<T>,
    total: i64,
    page: crate::PageRequest,
) -> Json<Listed<T>> {
    Json(Listed {
        data: items,
        error: None,
        total,
        page: page.page,
        per_page: page.per_page,
    })
}
