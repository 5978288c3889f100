//! Azure resource ids, as cost exports and inventory files write them, and the canonical
//! Azure resource type.
//!
//! Only what grouping and reports need is read: the subscription (the account), the resource
//! type and the name. Azure treats ids as case-insensitive and exports often lowercase them, so
//! the parser accepts the prefix in any case and lowercases the type; the argument grammar
//! (`grammar`) stays case-sensitive on purpose. [`join_key`] is the id's case-insensitive form,
//! for joining a cost export's ids to Resource Graph's.
//!
//! **Canonical type**: `azure:` + the provider type in lower case without `microsoft.`:
//! `Microsoft.Compute/virtualMachines` → `azure:compute/virtualmachines`,
//! `microsoft.sql/servers/databases` → `azure:sql/servers/databases`. The policy's `applies_to`
//! reads `service:kind`, so `azure` alone (= `azure:*`) selects every Azure resource,
//! `azure:compute/*` a namespace, and no Azure type can collide with an AWS (`ec2:instance`) or
//! GCP (`gcp:compute/instance`) one.

use compact_str::{CompactString, format_compact};

/// The `service` of every canonical Azure type.
pub(crate) const SERVICE: &str = "azure";

/// The parts of an Azure resource id that tagwarden uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AzureId<'a> {
    /// The subscription id, the id's account.
    pub subscription: &'a str,
    /// The canonical type (see the module docs), e.g. `azure:compute/virtualmachines`; empty
    /// when the id names no type.
    pub resource_type: CompactString,
    /// The last segment of the id.
    pub name: &'a str,
}

impl<'a> AzureId<'a> {
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}`
    /// → `azure:compute/virtualmachines`, `{name}`, account `{sub}`. A child resource
    /// (`.../servers/s1/databases/db1`) has the nested type (`azure:sql/servers/databases`), as
    /// Resource Graph's `type` column writes it; for an extension resource (a second
    /// `providers` segment) the last provider counts. A resource group and a subscription have
    /// the types Resource Graph gives them.
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
            .rposition(|s| s.eq_ignore_ascii_case("providers"))
        {
            Some(at) if at + 3 < segments.len() => {
                // namespace, then type/name pairs: keep the types.
                let mut provider_type = String::from(segments[at + 1]);
                for ty in segments[at + 2..].iter().step_by(2) {
                    provider_type.push('/');
                    provider_type.push_str(ty);
                }
                canonical_type(&provider_type)
            }
            Some(_) => CompactString::default(),
            None => match segments.len() {
                1 => canonical_type("microsoft.resources/subscriptions"),
                3 if segments[1].eq_ignore_ascii_case("resourcegroups") => {
                    canonical_type("microsoft.resources/subscriptions/resourcegroups")
                }
                _ => CompactString::default(),
            },
        };
        Some(AzureId {
            subscription,
            resource_type,
            name: segments.last().copied().unwrap_or_default(),
        })
    }
}

/// The canonical type of an Azure provider type (`Microsoft.Compute/virtualMachines`, as
/// Resource Graph's `type` column or an id writes it): `azure:compute/virtualmachines`. A
/// namespace of another publisher keeps its name (`SendGrid.Email/accounts` →
/// `azure:sendgrid.email/accounts`). Empty for an empty type.
pub(crate) fn canonical_type(provider_type: &str) -> CompactString {
    let lower = provider_type.trim().trim_matches('/').to_ascii_lowercase();
    if lower.is_empty() {
        return CompactString::default();
    }
    let bare = lower.strip_prefix("microsoft.").unwrap_or(&lower);
    format_compact!("{SERVICE}:{bare}")
}

/// The form of an Azure id two sources agree on whatever case each writes it in (Resource
/// Graph keeps the portal's capitals, cost exports often lowercase the whole id): the id in
/// ASCII lower case. None for a string that is not an Azure id, so callers skip the
/// allocation for every other id.
pub(crate) fn join_key(id: &str) -> Option<String> {
    looks_like_azure_id(id).then(|| id.to_ascii_lowercase())
}

/// Whether `id` starts with `/subscriptions/` in any case: one cheap test, so the hot paths of
/// other clouds' ids pay a byte comparison at most.
pub(crate) fn looks_like_azure_id(id: &str) -> bool {
    const PREFIX: &str = "/subscriptions/";
    id.as_bytes().first() == Some(&b'/')
        && id
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}
