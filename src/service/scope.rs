//! The resource scope as tool arguments: one `Scope` for the data, with each tool's own
//! descriptions as constants, so the published input schemas (tools/*.json) stay exactly as the
//! tools document them while every tool reads the same struct.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::compliance::Scope;

/// Per-tool descriptions of the three scope arguments (`None`: undocumented).
pub(crate) trait ScopeDocs {
    const RESOURCE_TYPES: Option<&'static str>;
    const REGIONS: Option<&'static str>;
    const ACCOUNTS: Option<&'static str>;
}

/// A `Scope` read from tool arguments; flatten it into an Args struct
/// (`#[serde(flatten)] pub scope: ScopeArgs<Docs>`) to accept `resource_types`, `regions` and
/// `accounts` at the top level.
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub(crate) struct ScopeArgs<D> {
    pub scope: Scope,
    #[serde(skip)]
    docs: PhantomData<D>,
}

impl<D> ScopeArgs<D> {
    pub(crate) fn new(scope: Scope) -> Self {
        ScopeArgs {
            scope,
            docs: PhantomData,
        }
    }
}

impl<D> From<Scope> for ScopeArgs<D> {
    fn from(scope: Scope) -> Self {
        ScopeArgs::new(scope)
    }
}

impl<D> Deref for ScopeArgs<D> {
    type Target = Scope;
    fn deref(&self) -> &Scope {
        &self.scope
    }
}

impl<D> DerefMut for ScopeArgs<D> {
    fn deref_mut(&mut self) -> &mut Scope {
        &mut self.scope
    }
}

impl<D> fmt::Debug for ScopeArgs<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.scope.fmt(f)
    }
}

impl<D> Clone for ScopeArgs<D> {
    fn clone(&self) -> Self {
        ScopeArgs::new(self.scope.clone())
    }
}

impl<D> Default for ScopeArgs<D> {
    fn default() -> Self {
        ScopeArgs::new(Scope::default())
    }
}

impl<D> PartialEq for ScopeArgs<D> {
    fn eq(&self, other: &Self) -> bool {
        self.scope == other.scope
    }
}

impl<D> Eq for ScopeArgs<D> {}

impl<D: ScopeDocs> JsonSchema for ScopeArgs<D> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ScopeArgs")
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut properties = Map::new();
        let fields = [
            ("resource_types", 50, D::RESOURCE_TYPES),
            ("regions", 50, D::REGIONS),
            ("accounts", 200, D::ACCOUNTS),
        ];
        for (name, max, description) in fields {
            let mut field = generator.subschema_for::<Vec<String>>();
            field.insert("default".into(), json!([]));
            field.insert("maxItems".into(), json!(max));
            if let Some(text) = description {
                field.insert("description".into(), Value::from(text));
            }
            properties.insert(name.into(), field.to_value());
        }
        schemars::json_schema!({ "type": "object", "properties": properties })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Docs;
    impl ScopeDocs for Docs {
        const RESOURCE_TYPES: Option<&'static str> = Some("Types.");
        const REGIONS: Option<&'static str> = None;
        const ACCOUNTS: Option<&'static str> = None;
    }

    #[derive(Debug, Deserialize, Serialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct Args {
        #[serde(flatten)]
        scope: ScopeArgs<Docs>,
        #[serde(default)]
        top: u32,
    }

    #[test]
    fn flattened_scope_reads_and_writes_the_top_level_keys() {
        let args: Args =
            serde_json::from_value(json!({"regions": ["eu-west-1"], "top": 2})).unwrap();
        assert_eq!(args.scope.regions, ["eu-west-1"]);
        assert!(args.scope.resource_types.is_empty() && args.scope.accounts.is_empty());
        assert_eq!(
            serde_json::to_value(&args).unwrap(),
            json!({"resource_types": [], "regions": ["eu-west-1"], "accounts": [], "top": 2})
        );
        assert!(serde_json::from_value::<Args>(json!({"region": ["x"]})).is_err());
    }

    #[test]
    fn schema_keeps_per_tool_descriptions_and_limits() {
        let schema = serde_json::to_value(schemars::schema_for!(Args)).unwrap();
        let props = &schema["properties"];
        assert_eq!(props["resource_types"]["description"], "Types.");
        assert!(props["regions"].get("description").is_none());
        assert_eq!(props["accounts"]["maxItems"], 200);
        assert_eq!(props["regions"]["default"], json!([]));
        assert_eq!(schema["additionalProperties"], false);
    }
}
