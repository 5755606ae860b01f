//! The HTTP API's shapes for monitoring: `GET /healthz` and `GET /readyz`
//! (see docs/http-api.md). Shapes only: no handler logic.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /healthz`: the process answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether the store answers and the node listens.
    pub ready: bool,
    /// Whether the store answered a query.
    pub store: bool,
    /// How many addresses the node listens on.
    pub listening: u64,
    /// What is not ready, in words (empty when ready).
    pub problems: Vec<String>,
}
