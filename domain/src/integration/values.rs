//! An integration's endpoint URL and event filter.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::InvalidValue;

/// An absolute `http(s)` URL without credentials or fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub const MAX_CHARS: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(InvalidValue::Empty);
        }
        if raw.len() > Self::MAX_CHARS {
            return Err(InvalidValue::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        let url = url::Url::parse(raw).map_err(|_| InvalidValue::NotAUrl)?;
        let acceptable = matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.fragment().is_none();
        if !acceptable {
            return Err(InvalidValue::NotAUrl);
        }
        Ok(Self(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address when the host is written as one (`http://10.0.0.1/`), which no DNS
    /// answer will be asked for.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match url::Url::parse(&self.0).ok()?.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }
}

/// `*`, `aggregate.*` or an exact `aggregate.event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPattern(String);

impl EventPattern {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(InvalidValue::Empty);
        }
        if raw.len() > 100 {
            return Err(InvalidValue::TooLong { max: 100 });
        }
        let word =
            |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let valid = raw == "*"
            || raw
                .split_once('.')
                .is_some_and(|(aggregate, name)| word(aggregate) && (name == "*" || word(name)));
        if !valid {
            return Err(InvalidValue::NotAnEventType);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self.0.strip_suffix(".*") {
            _ if self.0 == "*" => true,
            Some(aggregate) => event_type
                .split_once('.')
                .is_some_and(|(a, _)| a == aggregate),
            None => self.0 == event_type,
        }
    }
}

/// What an integration receives; for a service, empty means its default routes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter(Vec<EventPattern>);

impl EventFilter {
    pub const MAX_PATTERNS: usize = 50;

    /// Each entry parsed in order; the error carries the index of the first bad one.
    pub fn parse(raw: &[String]) -> Result<Self, (Option<usize>, InvalidValue)> {
        if raw.len() > Self::MAX_PATTERNS {
            return Err((
                None,
                InvalidValue::TooMany {
                    max: Self::MAX_PATTERNS,
                },
            ));
        }
        let mut patterns: Vec<EventPattern> = Vec::with_capacity(raw.len());
        for (index, entry) in raw.iter().enumerate() {
            let pattern = EventPattern::parse(entry).map_err(|e| (Some(index), e))?;
            if patterns.contains(&pattern) {
                return Err((Some(index), InvalidValue::Repeated(pattern.0)));
            }
            patterns.push(pattern);
        }
        Ok(Self(patterns))
    }

    pub fn patterns(&self) -> &[EventPattern] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|p| p.matches(event_type))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|p| p.0.clone()).collect()
    }
}
