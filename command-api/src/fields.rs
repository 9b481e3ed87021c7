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

    /// An optional text field: absent or blank is none.
    pub fn optional<T>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: fn(&str) -> Result<T, InvalidValue>,
    ) -> Option<Option<T>> {
        match raw.map(str::trim).filter(|text| !text.is_empty()) {
            None => Some(None),
            Some(text) => self.check(field, parse(text)).map(Some),
        }
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
