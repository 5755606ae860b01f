//! `GET /api/openapi.json`: the API's OpenAPI 3.1 description, generated
//! from the handlers' `#[utoipa::path]` annotations and the shapes'
//! `ToSchema` derives, so it cannot drift from the code. Served behind the
//! token like every `/api` route.
//!
//! It lists routes; it must not describe anything the router does not serve
//! (a test checks every route is listed).

use super::{
    blobs, conflicts, devices, federation, feed, maps, monitor, peers, records, schemas, sharing,
    sync_details,
};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shoal daemon HTTP API",
        license(name = "MIT OR Apache-2.0"),
        description = "The API `shoal serve` serves (docs/http-api.md). Every route but \
                       `/healthz` and `/readyz` needs `Authorization: Bearer <token>` (the \
                       token is in DATA/token; `/metrics` is open with `--metrics-public`); \
                       every failure is `{\"code\", \"message\"}`."
    ),
    paths(
        document,
        peers::node,
        peers::list,
        peers::add,
        peers::forget,
        peers::sync,
        records::collections,
        records::list,
        records::create,
        records::get,
        records::put,
        records::patch,
        records::delete,
        schemas::get,
        schemas::set,
        schemas::remove,
        maps::map_set,
        maps::map_remove,
        feed::changes,
        sharing::rules,
        sharing::set_rule,
        sharing::set_local_only,
        conflicts::list,
        devices::list,
        devices::approve,
        devices::revoke,
        federation::diff,
        federation::pull,
        federation::push,
        sync_details::details,
        blobs::upload,
        blobs::download,
        blobs::list,
        monitor::healthz,
        monitor::readyz,
        monitor::metrics,
    ),
    modifiers(&BearerToken),
    security(("token" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer token every route requires.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json"),
        (status = 401, body = crate::api::ApiError)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
