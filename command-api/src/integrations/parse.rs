//! Integration requests into value objects, every bad field named.

use api_core::{ApiError, FieldError};
use bridge_relay::{AddressPolicy, ServiceUrls};
use domain::{
    Description,
    integration::{EndpointUrl, EventFilter, IntegrationChanges, Target},
    store::Change,
};
use schemas::api::bridge::UpdateIntegrationRequest;

use crate::fields::Fields;

pub struct Connection {
    /// A webhook's; none for a service.
    pub endpoint_url: Option<EndpointUrl>,
    pub event_types: EventFilter,
    pub description: Option<Description>,
}

/// A URL naming a refused address outright is refused now; a host name is resolved
/// and checked at every delivery, since what it resolves to can change.
fn endpoint_url(fields: &mut Fields, raw: &str, addresses: &AddressPolicy) -> Option<EndpointUrl> {
    let url = fields.check("endpoint_url", EndpointUrl::parse(raw))?;
    if let Some(refusal) = url.ip_literal().and_then(|ip| addresses.refusal(ip)) {
        fields.push(FieldError::new(
            "endpoint_url",
            "forbidden_address",
            refusal,
        ));
        return None;
    }
    Some(url)
}

fn event_types(fields: &mut Fields, raw: &[String]) -> Option<EventFilter> {
    match EventFilter::parse(raw) {
        Ok(filter) => Some(filter),
        Err((index, invalid)) => {
            let field = match index {
                Some(index) => format!("event_types[{index}]"),
                None => "event_types".to_owned(),
            };
            fields.push(FieldError::new(&field, invalid.code(), invalid.to_string()));
            None
        }
    }
}

/// A service the platform can reach: known, and with an address in
/// `BRIDGE_SERVICE_URLS`.
pub fn target(raw: &str, services: &ServiceUrls) -> Result<Target, ApiError> {
    let invalid = |code: &str, message: &str| {
        ApiError::Validation(vec![FieldError::new("service", code, message)])
    };
    match Target::parse(raw) {
        Some(Target::Service(service)) if services.url_of(service).is_some() => {
            Ok(Target::Service(service))
        }
        Some(Target::Service(_)) => Err(invalid(
            "not_available",
            "this platform has no address for this service; it cannot be connected",
        )),
        _ => Err(invalid(
            "unknown_service",
            "must be one of trendscout, contentforge, rankpilot, flowsend, spydrop, postpilot, adscale, shopchat",
        )),
    }
}

/// A connection: a webhook's with its URL, a service's without one.
pub fn connection(
    url: Option<&str>,
    raw_event_types: &[String],
    description: Option<&str>,
    addresses: &AddressPolicy,
) -> Result<Connection, ApiError> {
    let mut fields = Fields::default();
    let endpoint_url = match url {
        Some(raw) => endpoint_url(&mut fields, raw, addresses).map(Some),
        None => Some(None),
    };
    let event_types = event_types(&mut fields, raw_event_types);
    let description = match description {
        None => Some(None),
        Some(raw) => fields
            .check("description", Description::parse(raw))
            .map(Some),
    };
    fields.finish(|| {
        Some(Connection {
            endpoint_url: endpoint_url?,
            event_types: event_types?,
            description: description.clone()?,
        })
    })
}

pub fn changes(
    request: &UpdateIntegrationRequest,
    addresses: &AddressPolicy,
) -> Result<IntegrationChanges, ApiError> {
    let mut fields = Fields::default();
    let endpoint_url = request
        .endpoint_url
        .as_deref()
        .map(|raw| endpoint_url(&mut fields, raw, addresses));
    let event_types = request
        .event_types
        .as_deref()
        .map(|raw| event_types(&mut fields, raw));
    let description = match &request.description {
        None => Some(Change::Keep),
        Some(None) => Some(Change::Clear),
        Some(Some(raw)) => fields
            .check("description", Description::parse(raw))
            .map(Change::Set),
    };
    fields.finish(|| {
        Some(IntegrationChanges {
            endpoint_url: endpoint_url
                .map(|parsed| parsed.ok_or(()))
                .transpose()
                .ok()?,
            event_types: event_types
                .map(|parsed| parsed.ok_or(()))
                .transpose()
                .ok()?,
            description: description.clone()?,
            enabled: request.enabled,
        })
    })
}
