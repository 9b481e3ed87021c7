//! The ServiceBridge map (DESIGN §5): which service receives which event types.

use std::fmt;

/// A connected service of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    TrendScout,
    ContentForge,
    RankPilot,
    FlowSend,
    SpyDrop,
    PostPilot,
    AdScale,
    ShopChat,
}

impl Service {
    pub const ALL: [Service; 8] = [
        Service::TrendScout,
        Service::ContentForge,
        Service::RankPilot,
        Service::FlowSend,
        Service::SpyDrop,
        Service::PostPilot,
        Service::AdScale,
        Service::ShopChat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrendScout => "trendscout",
            Self::ContentForge => "contentforge",
            Self::RankPilot => "rankpilot",
            Self::FlowSend => "flowsend",
            Self::SpyDrop => "spydrop",
            Self::PostPilot => "postpilot",
            Self::AdScale => "adscale",
            Self::ShopChat => "shopchat",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The event types this service receives by default.
    pub fn routes(self) -> Vec<&'static str> {
        ROUTES
            .iter()
            .filter(|(_, services)| services.contains(&self))
            .map(|(event_type, _)| *event_type)
            .collect()
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Event type → the services it goes to.
pub const ROUTES: &[(&str, &[Service])] = &[
    (
        "product.created",
        &[
            Service::ContentForge,
            Service::RankPilot,
            Service::TrendScout,
            Service::PostPilot,
            Service::AdScale,
            Service::ShopChat,
        ],
    ),
    (
        "product.updated",
        &[Service::ContentForge, Service::RankPilot, Service::ShopChat],
    ),
    ("order.created", &[Service::FlowSend, Service::SpyDrop]),
    ("order.shipped", &[Service::FlowSend]),
    ("customer.created", &[Service::FlowSend]),
];

/// Where an integration delivers: one of the services, or the merchant's own endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Service(Service),
    Webhook,
}

impl Target {
    pub const WEBHOOK: &'static str = "webhook";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service(service) => service.as_str(),
            Self::Webhook => Self::WEBHOOK,
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        if raw == Self::WEBHOOK {
            Some(Self::Webhook)
        } else {
            Service::parse(raw).map(Self::Service)
        }
    }
}

/// What an integration with `event_types` receives: the filter, or for a service with
/// none, its default routes.
pub fn receives(target: &str, event_types: &[String]) -> Vec<String> {
    match Service::parse(target) {
        Some(service) if event_types.is_empty() => {
            service.routes().into_iter().map(str::to_owned).collect()
        }
        _ => event_types.to_vec(),
    }
}
