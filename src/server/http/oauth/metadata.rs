//! What clients are told about this protected resource: the RFC 9728 metadata document (at
//! `/.well-known/oauth-protected-resource/mcp`, the root form, and the form for the audience's
//! own path) and the `WWW-Authenticate` challenges of 401 and 403 answers, which point to it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::Role;

/// The well-known prefix of RFC 9728.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// Where the metadata of `resource` is: the well-known prefix inserted between its host and
/// its path (RFC 9728 §3.1), e.g. `https://h/mcp` → `https://h/.well-known/oauth-protected-resource/mcp`.
pub(super) fn metadata_url(resource: &reqwest::Url) -> String {
    let mut url = resource.clone();
    let path = resource.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{WELL_KNOWN}{path}"));
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// The metadata document (RFC 9728 §2).
pub(super) fn document(resource: &str, issuer: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": Role::ALL.iter().map(|r| r.scope()).collect::<Vec<_>>(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Tagwarden",
    })
}

/// The routes serving the document: the root form, `/mcp`, and the audience's own path.
pub(super) fn routes(resource: &reqwest::Url, document: Value) -> Router {
    let own = format!("{WELL_KNOWN}{}", resource.path().trim_end_matches('/'));
    let mut paths = vec![WELL_KNOWN.to_string(), format!("{WELL_KNOWN}/mcp"), own];
    paths.sort();
    paths.dedup();
    let serve = move || {
        let body = document.clone();
        async move {
            (
                [
                    (header::CACHE_CONTROL, "max-age=3600"),
                    // Public by design: browser-based clients read it cross-origin.
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                axum::Json(body),
            )
                .into_response()
        }
    };
    paths.into_iter().fold(Router::new(), |router, path| {
        router.route(&path, get(serve.clone()))
    })
}

/// `WWW-Authenticate` of a 401: where the metadata is and, when a token was presented, why
/// it was refused (a fixed phrase: nothing the client sent is echoed).
pub(super) fn unauthorized(metadata_url: &str, refused: Option<&'static str>) -> HeaderValue {
    let value = match refused {
        None => format!("Bearer realm=\"tagwarden\", resource_metadata=\"{metadata_url}\""),
        Some(why) => format!(
            "Bearer realm=\"tagwarden\", error=\"invalid_token\", error_description=\"{why}\", \
             resource_metadata=\"{metadata_url}\""
        ),
    };
    header_value(value)
}

/// `WWW-Authenticate` of a 403: the scope needed (RFC 6750 §3.1, MCP step-up authorization).
pub(super) fn insufficient_scope(metadata_url: &str, needed: Role) -> HeaderValue {
    header_value(format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata_url}\"",
        needed.scope()
    ))
}

fn header_value(value: String) -> HeaderValue {
    // The URL was parsed and serialised by `url` (ASCII); the fallback is never expected.
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"tagwarden\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path_before_the_resource_path() {
        let url = |s: &str| metadata_url(&reqwest::Url::parse(s).unwrap());
        assert_eq!(
            url("https://tw.example.com/mcp"),
            "https://tw.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            url("https://tw.example.com:8443/team/mcp"),
            "https://tw.example.com:8443/.well-known/oauth-protected-resource/team/mcp"
        );
        assert_eq!(
            url("https://tw.example.com"),
            "https://tw.example.com/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn challenges_name_the_metadata_and_the_scope() {
        let m = "https://h/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            unauthorized(m, None),
            format!("Bearer realm=\"tagwarden\", resource_metadata=\"{m}\"")
        );
        let refused = unauthorized(m, Some("token expired"));
        let refused = refused.to_str().unwrap();
        assert!(refused.contains("error=\"invalid_token\"") && refused.contains("expired"));
        let forbidden = insufficient_scope(m, Role::Viewer);
        assert!(
            forbidden
                .to_str()
                .unwrap()
                .contains("scope=\"tagwarden:read\"")
        );
    }

    #[test]
    fn the_document_lists_the_issuer_and_the_scopes() {
        let d = document("https://h/mcp", "https://auth.example.com");
        assert_eq!(d["resource"], "https://h/mcp");
        assert_eq!(d["authorization_servers"][0], "https://auth.example.com");
        assert_eq!(
            d["scopes_supported"],
            json!(["tagwarden:read", "tagwarden:approve", "tagwarden:admin"])
        );
        assert_eq!(d["bearer_methods_supported"], json!(["header"]));
    }
}
