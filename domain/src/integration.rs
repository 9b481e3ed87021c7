//! A store's integrations: connections to the platform's services (the ServiceBridge)
//! and webhook endpoints of the merchant's own. The relay delivers events to them; this
//! aggregate holds who is connected, where, for which events, and with which secret.

mod routes;
mod values;

use schemas::{
    Event,
    integration::{
        DisconnectReason, IntegrationConnected, IntegrationData, IntegrationDisabled,
        IntegrationDisconnected, IntegrationEnabled, IntegrationSecretRotated, IntegrationUpdated,
    },
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

pub use routes::{ROUTES, Service, Target, receives};
pub use values::{EndpointUrl, EventFilter, EventPattern};

use crate::{Description, store::Change};

/// How long a rotated-out secret keeps signing beside its successor.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntegrationError {
    #[error("it already exists")]
    AlreadyExists,
    #[error("not found")]
    NotFound,
    #[error("{service} does not receive {pattern}")]
    NotRouted { service: Service, pattern: String },
    #[error("a webhook needs at least one event type")]
    NoEventTypes,
    /// A service lives where the platform says; merchants choose only whether to
    /// connect it (platform signatures must never reach a merchant's own server).
    #[error("a service's address is set by the platform, not by its integration")]
    EndpointFixed,
    #[error("a webhook needs an endpoint URL")]
    EndpointRequired,
}

/// Why deliveries stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisableReason {
    /// The merchant turned it off.
    Merchant,
    /// The endpoint answered 410 Gone.
    Gone,
}

impl DisableReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Merchant => "merchant",
            Self::Gone => "gone",
        }
    }
}

/// The secret that signed until a rotation, and until when it still does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    pub secret_id: Uuid,
    pub valid_until_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    pub data: IntegrationData,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub previous_secret: Option<PreviousSecret>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Integration {
    #[default]
    Unborn,
    Existing(Connected),
    Disconnected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub store_id: Uuid,
    pub target: Target,
    /// A webhook's own URL; `None` for a service, which is reached at the platform's
    /// configured address.
    pub endpoint_url: Option<EndpointUrl>,
    pub event_types: EventFilter,
    pub description: Option<Description>,
    /// The id under which the caller stored the new secret.
    pub secret_id: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationChanges {
    pub endpoint_url: Option<EndpointUrl>,
    pub event_types: Option<EventFilter>,
    pub description: Change<Description>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrationCommand {
    Connect(Connection),
    /// Merchant changes, `enabled` included.
    Update(IntegrationChanges),
    /// The platform's own: an endpoint that answered 410.
    Disable(DisableReason),
    RotateSecret {
        secret_id: Uuid,
        /// Now, in microseconds since the epoch.
        now_micros: i64,
    },
    Disconnect(DisconnectReason),
}

/// Scopes of service reservations (one integration per service and store) start with
/// this, followed by the store id; the value is the service.
pub const SERVICE_SCOPE_PREFIX: &str = "integration.service:";

pub fn decide(
    state: &Integration,
    command: &IntegrationCommand,
) -> Result<Vec<Event>, IntegrationError> {
    let current = match (state, command) {
        (Integration::Unborn, IntegrationCommand::Connect(connection)) => {
            return connect(connection);
        }
        (Integration::Unborn | Integration::Disconnected, _) => {
            return Err(IntegrationError::NotFound);
        }
        (Integration::Existing(_), IntegrationCommand::Connect(_)) => {
            return Err(IntegrationError::AlreadyExists);
        }
        (Integration::Existing(current), _) => current,
    };
    Ok(match command {
        IntegrationCommand::Connect(_) => Vec::new(),
        IntegrationCommand::Update(changes) => update(current, changes)?,
        IntegrationCommand::Disable(reason) => {
            switched(current, false, *reason).into_iter().collect()
        }
        IntegrationCommand::RotateSecret {
            secret_id,
            now_micros,
        } => vec![Event::IntegrationSecretRotated(IntegrationSecretRotated {
            secret_id: *secret_id,
            previous_secret_id: current.data.secret_id,
            previous_valid_until: chrono::DateTime::from_timestamp_micros(
                now_micros + ROTATION_OVERLAP_HOURS * 3_600_000_000,
            )
            .unwrap_or_default(),
        })],
        IntegrationCommand::Disconnect(reason) => {
            vec![Event::IntegrationDisconnected(IntegrationDisconnected {
                reason: *reason,
            })]
        }
    })
}

fn connect(connection: &Connection) -> Result<Vec<Event>, IntegrationError> {
    let endpoint_url = match (connection.target, &connection.endpoint_url) {
        (Target::Webhook, Some(url)) => url.as_str().to_owned(),
        (Target::Webhook, None) => return Err(IntegrationError::EndpointRequired),
        // In the event, empty: the platform's address for the service.
        (Target::Service(_), None) => String::new(),
        (Target::Service(_), Some(_)) => return Err(IntegrationError::EndpointFixed),
    };
    checked_filter(connection.target, &connection.event_types)?;
    Ok(vec![Event::IntegrationConnected(IntegrationConnected {
        integration: IntegrationData {
            store_id: connection.store_id,
            target: connection.target.as_str().to_owned(),
            endpoint_url,
            event_types: connection.event_types.to_strings(),
            description: connection
                .description
                .as_ref()
                .map(|d| d.as_str().to_owned()),
            secret_id: connection.secret_id,
        },
    })])
}

/// A service receives only what its routes send it; a webhook must name what it wants.
fn checked_filter(target: Target, filter: &EventFilter) -> Result<(), IntegrationError> {
    match target {
        Target::Webhook if filter.is_empty() => Err(IntegrationError::NoEventTypes),
        Target::Webhook => Ok(()),
        Target::Service(service) => match filter
            .patterns()
            .iter()
            .find(|pattern| !service.routes().iter().any(|t| pattern.matches(t)))
        {
            Some(pattern) => Err(IntegrationError::NotRouted {
                service,
                pattern: pattern.as_str().to_owned(),
            }),
            None => Ok(()),
        },
    }
}

fn update(
    current: &Connected,
    changes: &IntegrationChanges,
) -> Result<Vec<Event>, IntegrationError> {
    let mut data = current.data.clone();
    let mut changed = Vec::new();
    if changes.endpoint_url.is_some() && data.target != Target::WEBHOOK {
        return Err(IntegrationError::EndpointFixed);
    }
    if let Some(url) = &changes.endpoint_url
        && url.as_str() != data.endpoint_url
    {
        data.endpoint_url = url.as_str().to_owned();
        changed.push("endpoint_url".to_owned());
    }
    if let Some(filter) = &changes.event_types {
        let target = Target::parse(&data.target).ok_or(IntegrationError::NotFound)?;
        checked_filter(target, filter)?;
        if filter.to_strings() != data.event_types {
            data.event_types = filter.to_strings();
            changed.push("event_types".to_owned());
        }
    }
    let description = match &changes.description {
        Change::Keep => data.description.clone(),
        Change::Clear => None,
        Change::Set(description) => Some(description.as_str().to_owned()),
    };
    if description != data.description {
        data.description = description;
        changed.push("description".to_owned());
    }
    let mut events = Vec::new();
    if !changed.is_empty() {
        events.push(Event::IntegrationUpdated(IntegrationUpdated {
            integration: data,
            changed,
        }));
    }
    if let Some(enabled) = changes.enabled {
        events.extend(switched(current, enabled, DisableReason::Merchant));
    }
    Ok(events)
}

/// The event that turns deliveries on or off, unless they already are.
fn switched(current: &Connected, enabled: bool, reason: DisableReason) -> Option<Event> {
    match (current.enabled, enabled) {
        (false, true) => Some(Event::IntegrationEnabled(IntegrationEnabled {})),
        (true, false) => Some(Event::IntegrationDisabled(IntegrationDisabled {
            reason: reason.as_str().to_owned(),
        })),
        _ => None,
    }
}

pub fn evolve(state: Integration, event: &Event) -> Integration {
    match (state, event) {
        (_, Event::IntegrationConnected(e)) => Integration::Existing(Connected {
            data: e.integration.clone(),
            enabled: true,
            disabled_reason: None,
            previous_secret: None,
        }),
        (Integration::Existing(mut current), event) => {
            match event {
                Event::IntegrationUpdated(e) => current.data = e.integration.clone(),
                Event::IntegrationEnabled(_) => {
                    current.enabled = true;
                    current.disabled_reason = None;
                }
                Event::IntegrationDisabled(e) => {
                    current.enabled = false;
                    current.disabled_reason = Some(e.reason.clone());
                }
                Event::IntegrationSecretRotated(e) => {
                    current.previous_secret = Some(PreviousSecret {
                        secret_id: e.previous_secret_id,
                        valid_until_micros: e.previous_valid_until.timestamp_micros(),
                    });
                    current.data.secret_id = e.secret_id;
                }
                Event::IntegrationDisconnected(_) => return Integration::Disconnected,
                _ => {}
            }
            Integration::Existing(current)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests;
