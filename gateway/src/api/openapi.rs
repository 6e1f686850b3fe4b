//! The OpenAPI document, generated from the handlers and views (a test checks it against the
//! routes served).

use utoipa::OpenApi;

use super::error::ErrorBody;
use super::handlers::*;
use super::views::*;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "iaas", description = "Decommission requests for vSphere VMs."),
    paths(create, list, show, cancel, openapi_json),
    components(schemas(CreateDecommission, DecommissionSummary, DecommissionView, VmView, StepView, DecommissionPage, CancelResult, ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
