//! `GET /v1/openapi.json` describes exactly the routes the server has.

mod common;

use std::collections::BTreeSet;

use common::{quick, start};

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_real_routes() {
    let server = start(quick()).await;
    let (status, doc) = server.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = any_server::routes()
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();

    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "documented routes the server does not have: {phantom:?}"
    );

    // And each documented route is really answered (not the 404/405 fallback).
    // Shutdown last: it stops the server.
    let ordered = documented
        .iter()
        .filter(|(_, p)| p != "/v1/shutdown")
        .chain(documented.iter().filter(|(_, p)| p == "/v1/shutdown"));
    for (method, path) in ordered {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = server
            .http
            .request(method.clone(), format!("{}{path}", server.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        let code = response.status().as_u16();
        assert!(
            code != 404 && code != 405,
            "{method} {path} is not routed ({code})"
        );
    }
}

#[tokio::test]
async fn every_schema_reference_resolves_and_every_error_code_is_listed() {
    let doc = any_server::openapi::document();
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().expect("name");
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    let codes = &doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"];
    for code in any_protocol::ErrorCode::ALL {
        assert!(
            codes
                .as_array()
                .expect("enum")
                .contains(&serde_json::json!(code.as_str())),
            "{code}"
        );
    }
}
