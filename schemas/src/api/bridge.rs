//! Integrations, merchant webhooks and the bridge's delivery log over HTTP.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::present;

/// Connect one of the platform's services to a store. Where the service receives its
/// deliveries is the platform's to say (`BRIDGE_SERVICE_URLS`), not the merchant's.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectIntegrationRequest {
    /// `trendscout`, `contentforge`, `rankpilot`, `flowsend`, `spydrop`, `postpilot`,
    /// `adscale` or `shopchat`: one the platform has an address for.
    pub service: String,
    /// Narrows the service's routes (exact types or `aggregate.*`); all of them when absent.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// Register a webhook endpoint of the merchant's own.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Absolute http(s) URL.
    #[serde(alias = "url")]
    pub endpoint_url: String,
    /// At least one: exact types (`order.created`), `aggregate.*` or `*`.
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationRequest {
    /// A webhook's new URL; a service's address is not the merchant's to change (422).
    #[serde(alias = "url")]
    pub endpoint_url: Option<String>,
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `false` stops deliveries (they are not queued while disabled); `true` resumes.
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationView {
    pub id: Uuid,
    pub store_id: Uuid,
    /// The service, or `webhook` for a merchant's own endpoint.
    pub service: String,
    /// A webhook's URL; `null` for a service, which the platform knows the address of.
    pub endpoint_url: Option<String>,
    /// As configured; empty for a service means its default routes.
    pub event_types: Vec<String>,
    /// What it receives: the configured filter, or a service's default routes.
    pub receives: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// `merchant` or `gone` (the endpoint answered 410) while disabled.
    pub disabled_reason: Option<String>,
    /// Until when the secret replaced by the last rotation still signs.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub version: i32,
    /// `whsec_…`: only in the answer that created it (connect, register, rotate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Send one event now, to one service (or webhook endpoint) or to every endpoint it routes to.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchRequest {
    pub event_id: Uuid,
    /// A service name; absent for every endpoint the event routes to.
    pub service: Option<String>,
    /// One integration or webhook by id, instead of `service`.
    pub integration_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QueuedDeliveryView {
    /// The queued delivery; its attempt appears in the activity with `trigger: manual`.
    pub delivery_id: i64,
    pub integration_id: Uuid,
    pub service: String,
}

/// Redeliver everything that failed for a service in `[from, to)`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// One of the caller's stores; all of them when absent.
    pub store_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedeliveryView {
    pub queued: u64,
}

/// One attempt (BridgeDelivery).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryAttemptView {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub store_id: Uuid,
    pub resource_type: String,
    pub resource_id: String,
    pub integration_id: Uuid,
    pub service: String,
    pub attempt: i32,
    /// `scheduled` or `manual`.
    pub trigger: String,
    /// 0 when no HTTP answer came.
    pub status_code: i32,
    pub latency_ms: i32,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub success: bool,
    pub attempted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LastError {
    pub message: Option<String>,
    pub status_code: i32,
    pub at: DateTime<Utc>,
}

/// One service's last 24 hours.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceSummary {
    pub service: String,
    pub attempts: i64,
    pub successes: i64,
    pub failures: i64,
    /// successes / attempts, `null` without attempts.
    pub success_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub last_error: Option<LastError>,
}
