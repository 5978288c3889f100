//! MCP Apps (`io.modelcontextprotocol/ui`, stable 2026-01-26): the inline views a host such as
//! Claude Desktop renders beside a tool's answer. Each view (`tools::views::View`) is a
//! `ui://tagwarden/<view>` resource whose text is one self-contained HTML page (`view.html`:
//! inline CSS, script and SVG, no URL to fetch, so the host's default content-security policy
//! needs no exception). The page speaks the View protocol over postMessage and renders the
//! tool result's `structuredContent`; the tools' text `content` is unchanged for hosts
//! without the extension.

use rmcp::model::{ExtensionCapabilities, JsonObject, MetaObject, Resource, ResourceContents};

use crate::tools::views::View;

/// The extension's identifier in the server's capabilities.
pub(super) const EXTENSION_ID: &str = "io.modelcontextprotocol/ui";
/// The MIME type hosts render as an MCP App.
pub(crate) const MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The one page every view is served from; it switches on `data-view` (set per resource
/// below) and on the shape of the result it receives.
const PAGE: &str = include_str!("view.html");
/// The placeholder in `PAGE` replaced by the view's slug.
const VIEW_PLACEHOLDER: &str = "__TAGWARDEN_VIEW__";

/// The capability map entry: `{"io.modelcontextprotocol/ui": {"mimeTypes": [...]}}`.
pub(super) fn extension() -> ExtensionCapabilities {
    let mut settings = JsonObject::new();
    settings.insert("mimeTypes".into(), serde_json::json!([MIME_TYPE]));
    let mut extensions = ExtensionCapabilities::new();
    extensions.insert(EXTENSION_ID.to_string(), settings);
    extensions
}

/// `_meta.ui` of a view resource: a border around it, and a content-security policy that
/// allows no outside origin (the page loads nothing and connects nowhere).
fn resource_meta() -> MetaObject {
    let mut ui = JsonObject::new();
    ui.insert("prefersBorder".into(), true.into());
    ui.insert(
        "csp".into(),
        serde_json::json!({"connectDomains": [], "resourceDomains": []}),
    );
    let mut meta = MetaObject::new();
    meta.insert("ui".into(), serde_json::Value::Object(ui));
    meta
}

/// The view resources, for `resources/list`.
pub(super) fn resources() -> Vec<Resource> {
    View::ALL
        .into_iter()
        .map(|v| {
            Resource::new(v.uri(), format!("app-{}", v.slug()))
                .with_title(v.title())
                .with_description(
                    "An inline view (MCP App) of the tool answer that names this resource.",
                )
                .with_mime_type(MIME_TYPE)
                .with_meta(resource_meta())
        })
        .collect()
}

/// The HTML of the view a `ui://` URI names, or None for any other URI.
pub(super) fn read(uri: &str) -> Option<ResourceContents> {
    let view = View::from_uri(uri)?;
    Some(
        ResourceContents::text(page(view), uri)
            .with_mime_type(MIME_TYPE)
            .with_meta(resource_meta()),
    )
}

/// The page for one view.
fn page(view: View) -> String {
    PAGE.replacen(VIEW_PLACEHOLDER, view.slug(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_is_served_and_names_itself() {
        assert!(PAGE.contains(VIEW_PLACEHOLDER));
        for v in View::ALL {
            let Some(ResourceContents::TextResourceContents {
                mime_type, text, ..
            }) = read(v.uri())
            else {
                panic!("{} is not served as text", v.uri());
            };
            assert_eq!(mime_type.as_deref(), Some(MIME_TYPE));
            assert!(text.contains(&format!("data-view=\"{}\"", v.slug())));
            assert!(!text.contains(VIEW_PLACEHOLDER));
        }
        assert!(read("ui://tagwarden/nope").is_none());
        assert_eq!(resources().len(), View::ALL.len());
    }

    #[test]
    fn the_page_is_self_contained_and_never_writes_html_from_data() {
        let lower = PAGE.to_ascii_lowercase();
        for external in [
            "http://", "https://", "//cdn", "src=\"//", "@import", "url(",
        ] {
            assert!(!lower.contains(external), "{external} in view.html");
        }
        // Cloud-supplied strings reach the page: it builds nodes, never parses markup.
        for sink in [
            "innerhtml",
            "outerhtml",
            "insertadjacenthtml",
            "document.write",
            "eval(",
        ] {
            assert!(!lower.contains(sink), "{sink} in view.html");
        }
    }
}
