//! GCP full resource names (`//<service>.googleapis.com/<path>`), as cost exports and inventory
//! files write them.
//!
//! Only what grouping and reports need is read: the service and collection (the type), the
//! name, the project (the account) and the zone, region or location.

use compact_str::{CompactString, format_compact};

/// The parts of a GCP full resource name that tagwarden uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GcpName<'a> {
    /// `service:collection`, e.g. `compute:instances`.
    pub resource_type: CompactString,
    /// The last segment of the name.
    pub name: &'a str,
    /// The segment after `projects`; empty when there is none.
    pub project: &'a str,
    /// The segment after `zones`, else `regions`, else `locations` (`_` counts as none).
    pub region: &'a str,
}

impl<'a> GcpName<'a> {
    /// `//compute.googleapis.com/projects/p/zones/z/instances/vm-1` → `compute:instances`,
    /// `vm-1`, account `p`, region `z`.
    pub(crate) fn parse(id: &'a str) -> Option<Self> {
        let (host, path) = id.strip_prefix("//")?.split_once('/')?;
        let service = host.strip_suffix(".googleapis.com")?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let [.., collection, name] = segments.as_slice() else {
            return None;
        };
        let after = |key: &str| {
            segments
                .windows(2)
                .find(|w| w[0] == key)
                .map(|w| w[1])
                .filter(|v| *v != "_")
        };
        Some(GcpName {
            resource_type: format_compact!("{service}:{collection}"),
            name,
            project: after("projects").unwrap_or_default(),
            region: after("zones")
                .or_else(|| after("regions"))
                .or_else(|| after("locations"))
                .unwrap_or_default(),
        })
    }
}
