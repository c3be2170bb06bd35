//! The whole OpenAPI document: every route group's part (its `ApiDoc`),
//! completed by `shared::web::openapi`, with the event catalogue as
//! `webhooks`. `cargo run -p local --bin openapi -- --write` writes it to
//! docs/openapi.json; the registry test fails when that file is stale.

use serde_json::{Value, json};
use utoipa::OpenApi;

/// The platform-wide routes that belong to no group's document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(shared::http::health),
    tags(
        (name = "platform", description = "Liveness"),
        (name = "webhook events", description = "What your webhook endpoints receive: one signed POST per event (Standard Webhooks), retried until it answers 2xx")
    )
)]
struct PlatformDoc;

/// Every group's part, in the README's order.
pub fn parts() -> Vec<shared::web::openapi::Part> {
    vec![
        PlatformDoc::openapi(),
        auth::ApiDoc::openapi(),
        auth::mfa::ApiDoc::openapi(),
        auth::sso::ApiDoc::openapi(),
        auth::recovery::ApiDoc::openapi(),
        saml::ApiDoc::openapi(),
        tenants::ApiDoc::openapi(),
        users::ApiDoc::openapi(),
        api_keys::ApiDoc::openapi(),
        credits::ApiDoc::openapi(),
        billing::ApiDoc::openapi(),
        customers::ApiDoc::openapi(),
        tryons::ApiDoc::openapi(),
        webhooks::ApiDoc::openapi(),
        integrations::ApiDoc::openapi(),
        workflows::ApiDoc::openapi(),
        projects::ApiDoc::openapi(),
        ai::ApiDoc::openapi(),
        audit::ApiDoc::openapi(),
        compliance::ApiDoc::openapi(),
        admin::ApiDoc::openapi(),
        docs::ApiDoc::openapi(),
    ]
}

fn info() -> Value {
    json!({
        "title": "SaaS platform API",
        "version": env!("CARGO_PKG_VERSION"),
        "description": include_str!("../../../docs/api-overview.md"),
        "license": {"name": "Proprietary", "identifier": "LicenseRef-Proprietary"},
    })
}

/// The document as served.
pub fn document() -> Value {
    let mut doc = shared::web::openapi::document(
        parts(),
        info(),
        crate::webhooks_doc::webhooks(),
        crate::webhooks_doc::components(),
    );
    doc["servers"] = json!([{"url": "http://127.0.0.1:3000", "description": "local server (make run)"}]);
    doc
}

#[cfg(test)]
mod tests {
    /// Each group's part may declare tags; two declaring one name make an
    /// invalid document (OpenAPI 3.1: tag names are unique).
    #[test]
    fn every_tag_is_declared_once() {
        let doc = super::document();
        let mut seen = std::collections::BTreeSet::new();
        for tag in doc["tags"].as_array().expect("tags") {
            let name = tag["name"].as_str().expect("a tag name");
            assert!(seen.insert(name.to_owned()), "the tag {name:?} is declared twice");
        }
    }

    /// Components are merged by name: two groups giving one name to two
    /// different schemas would leave one of them describing the other's
    /// answers (schemathesis found `RotatedSecret` so, webhooks' and
    /// integrations').
    #[test]
    fn no_two_groups_name_different_schemas_alike() {
        let mut seen: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
        for part in super::parts() {
            let part = serde_json::to_value(part).expect("a part");
            for (name, schema) in part["components"]["schemas"].as_object().into_iter().flatten() {
                if let Some(earlier) = seen.insert(name.clone(), schema.clone()) {
                    assert_eq!(&earlier, schema, "two different schemas are named {name}");
                }
            }
        }
    }
}
