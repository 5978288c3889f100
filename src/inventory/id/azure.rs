//! Azure resource ids, as cost exports and inventory files write them.
//!
//! Only what grouping and reports need is read: the subscription (the account), the resource
//! type and the name. Azure treats ids as case-insensitive and exports often lowercase them, so
//! the parser accepts the prefix in any case and lowercases the type; the argument grammar
//! (`grammar`) stays case-sensitive on purpose.

use compact_str::{CompactString, format_compact};

/// The parts of an Azure resource id that tagwarden uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzureId<'a> {
    /// The subscription id, the id's account.
    pub subscription: &'a str,
    /// `namespace:type` in lower case without `Microsoft.`, e.g. `compute:virtualmachines`;
    /// empty when the id names no provider type.
    pub resource_type: CompactString,
    /// The last segment of the id.
    pub name: &'a str,
}

impl<'a> AzureId<'a> {
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}`
    /// → `compute:virtualmachines`, `{name}`, account `{sub}`. Azure ids are case-insensitive and
    /// exports often lowercase them, so the type is lowercased.
    pub(crate) fn parse(id: &'a str) -> Option<Self> {
        let prefix = "/subscriptions/";
        let rest = id
            .get(..prefix.len())
            .filter(|p| p.eq_ignore_ascii_case(prefix))
            .map(|_| &id[prefix.len()..])?;
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let subscription = *segments.first()?;
        let resource_type = match segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case("providers"))
        {
            Some(at) if at + 3 < segments.len() => {
                let namespace = segments[at + 1].to_ascii_lowercase();
                let namespace = namespace.strip_prefix("microsoft.").unwrap_or(&namespace);
                format_compact!("{namespace}:{}", segments[at + 2].to_ascii_lowercase())
            }
            _ => CompactString::default(),
        };
        Some(AzureId {
            subscription,
            resource_type,
            name: segments.last().copied().unwrap_or_default(),
        })
    }
}
