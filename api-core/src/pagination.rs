use crate::{ApiError, FieldError};

/// `?page=1&per_page=20`, validated: pages count from 1, at most 100 items each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

impl PageRequest {
    pub const DEFAULT_PER_PAGE: u32 = 20;
    pub const MAX_PER_PAGE: u32 = 100;

    pub fn parse(page: Option<u32>, per_page: Option<u32>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(Self::DEFAULT_PER_PAGE);
        let mut errors = Vec::new();
        if page == 0 {
            errors.push(FieldError::new(
                "page",
                "out_of_range",
                "pages count from 1",
            ));
        }
        if !(1..=Self::MAX_PER_PAGE).contains(&per_page) {
            errors.push(FieldError::new(
                "per_page",
                "out_of_range",
                format!("must be between 1 and {}", Self::MAX_PER_PAGE),
            ));
        }
        if errors.is_empty() {
            Ok(Self { page, per_page })
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_and_bound() {
        assert_eq!(
            PageRequest::parse(None, None).ok(),
            Some(PageRequest {
                page: 1,
                per_page: 20
            })
        );
        assert_eq!(
            PageRequest::parse(Some(3), Some(10))
                .map(|p| p.offset())
                .ok(),
            Some(20)
        );
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(None, Some(101)).is_err());
    }
}
