//! The MCP App views (`io.modelcontextprotocol/ui`) a tool's answer can be shown in. A tool
//! names its view (`Tool::VIEW`); the registry puts the view's `ui://` URI in the tool's
//! `_meta.ui`, and the server serves the view's HTML under that URI (`server/apps`). The list
//! lives here, below both, so the URIs a tool advertises and the resources served are one list.

use rmcp::model::MetaObject;

/// One inline view of a tool's structured answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// `check_tag_compliance`: score gauge, per-key bars, top offenders.
    Compliance,
    /// `get_cost_attribution_gap`: unattributed cost before and after virtual tags.
    CostGap,
    /// `get_violation_history`: the score trend.
    History,
    /// `review_virtual_tags`: the pending queue with approve and deny.
    Review,
}

impl View {
    /// Every view, in the order `resources/list` shows them.
    pub(crate) const ALL: [View; 4] =
        [View::Compliance, View::CostGap, View::History, View::Review];

    /// The short name: the last segment of the URI, and what the page switches on.
    pub(crate) fn slug(self) -> &'static str {
        match self {
            View::Compliance => "compliance",
            View::CostGap => "cost-gap",
            View::History => "history",
            View::Review => "review",
        }
    }

    /// The resource URI hosts fetch the view from.
    pub(crate) fn uri(self) -> &'static str {
        match self {
            View::Compliance => "ui://tagwarden/compliance",
            View::CostGap => "ui://tagwarden/cost-gap",
            View::History => "ui://tagwarden/history",
            View::Review => "ui://tagwarden/review",
        }
    }

    /// The view's title in resource lists.
    pub(crate) fn title(self) -> &'static str {
        match self {
            View::Compliance => "Tag compliance",
            View::CostGap => "Cost attribution gap",
            View::History => "Compliance trend",
            View::Review => "Virtual tags to review",
        }
    }

    /// The view a URI names, if any.
    pub(crate) fn from_uri(uri: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.uri() == uri)
    }

    /// The tool's `_meta`: `{"ui": {"resourceUri", "visibility": ["model", "app"]}}`. Listed
    /// for every client (list answers must not vary by client; hosts without the extension
    /// ignore it). Visible to the model as well as the app: these tools answer questions too.
    pub(crate) fn tool_meta(self) -> MetaObject {
        let mut ui = serde_json::Map::new();
        ui.insert("resourceUri".into(), self.uri().into());
        ui.insert("visibility".into(), serde_json::json!(["model", "app"]));
        let mut meta = MetaObject::new();
        meta.insert("ui".into(), serde_json::Value::Object(ui));
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_end_in_the_slug_and_resolve_back() {
        for v in View::ALL {
            assert_eq!(v.uri(), format!("ui://tagwarden/{}", v.slug()));
            assert_eq!(View::from_uri(v.uri()), Some(v));
            assert_eq!(
                v.tool_meta().get("ui").and_then(|u| u.get("resourceUri")),
                Some(&serde_json::Value::from(v.uri()))
            );
        }
        assert_eq!(View::from_uri("ui://tagwarden/other"), None);
    }
}
