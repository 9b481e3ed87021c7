use api_core::{ApiError, FieldError};
use domain::InvalidValue;

/// Collects the field errors of one request.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, InvalidValue>) -> Option<T> {
        parsed
            .map_err(|invalid| {
                self.0
                    .push(FieldError::new(field, invalid.code(), invalid.to_string()))
            })
            .ok()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
        if self.0.is_empty() {
            value().ok_or_else(|| ApiError::internal("a parsed field went missing"))
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}
