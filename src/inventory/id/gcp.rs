//! GCP full resource names (`//<service>.googleapis.com/<path>`), as cost exports and inventory
//! files write them, and the canonical GCP resource type.
//!
//! Only what grouping and reports need is read: the service and collection (the type), the
//! name, the project (the account) and the zone, region or location.
//!
//! **Canonical type**: `gcp:` + the Cloud Asset Inventory asset type in lower case without
//! `.googleapis.com`: `compute.googleapis.com/Instance` → `gcp:compute/instance`,
//! `storage.googleapis.com/Bucket` → `gcp:storage/bucket`. So `applies_to: ["gcp"]` selects
//! every GCP resource and `gcp:compute/*` a service. A name alone (a cost line whose resource
//! is not in the inventory) gives its collection in the singular (`instances` → `instance`),
//! which is the asset type for most services; the inventory's asset type wins when the
//! resource is there.

use compact_str::{CompactString, format_compact};

/// The `service` of every canonical GCP type.
pub(crate) const SERVICE: &str = "gcp";

/// The parts of a GCP full resource name that tagwarden uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GcpName<'a> {
    /// The canonical type, e.g. `gcp:compute/instance`.
    pub resource_type: CompactString,
    /// The last segment of the name.
    pub name: &'a str,
    /// The segment after `projects`; empty when there is none.
    pub project: &'a str,
    /// The segment after `zones`, else `regions`, else `locations` (`_` counts as none).
    pub region: &'a str,
}

impl<'a> GcpName<'a> {
    /// `//compute.googleapis.com/projects/p/zones/z/instances/vm-1` → `gcp:compute/instance`,
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
            resource_type: format_compact!(
                "{SERVICE}:{}/{}",
                service.to_ascii_lowercase(),
                singular(&collection.to_ascii_lowercase())
            ),
            name,
            project: after("projects").unwrap_or_default(),
            region: after("zones")
                .or_else(|| after("regions"))
                .or_else(|| after("locations"))
                .unwrap_or_default(),
        })
    }
}

/// The canonical type of a Cloud Asset Inventory asset type: `compute.googleapis.com/Instance`
/// → `gcp:compute/instance`. Types outside `googleapis.com` keep their group
/// (`k8s.io/Pod` → `gcp:k8s.io/pod`). Empty for an empty type.
pub(crate) fn canonical_type(asset_type: &str) -> CompactString {
    let lower = asset_type.trim().to_ascii_lowercase();
    if lower.is_empty() {
        return CompactString::default();
    }
    match lower.split_once('/') {
        Some((host, kind)) => {
            let service = host.strip_suffix(".googleapis.com").unwrap_or(host);
            format_compact!("{SERVICE}:{service}/{kind}")
        }
        None => format_compact!("{SERVICE}:{lower}"),
    }
}

/// A collection name in the singular, as asset types name kinds: `instances` → `instance`,
/// `policies` → `policy`, `addresses` → `address`.
fn singular(collection: &str) -> std::borrow::Cow<'_, str> {
    if let Some(stem) = collection.strip_suffix("ies") {
        return format!("{stem}y").into();
    }
    if let Some(stem) = collection.strip_suffix("sses") {
        return collection[..stem.len() + 2].into();
    }
    collection.strip_suffix('s').unwrap_or(collection).into()
}

/// The relative name of a full resource name (`projects/p/zones/z/instances/vm-1` for
/// `//compute.googleapis.com/projects/p/zones/z/instances/vm-1`): billing data names some
/// resources this way. None for a string that is not a full resource name.
pub(crate) fn relative_name(full_name: &str) -> Option<&str> {
    let (_, path) = full_name.strip_prefix("//")?.split_once('/')?;
    (!path.is_empty()).then_some(path)
}

/// The full name with its last segment replaced by the resource's numeric id
/// (`//compute.googleapis.com/projects/p/zones/z/instances/1234567890`): how Cloud Billing's
/// `resource.global_name` (FOCUS `ResourceId`) names Compute Engine resources. None when `id`
/// is not a number or is already the last segment.
pub(crate) fn with_numeric_id(full_name: &str, id: &str) -> Option<String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (parent, last) = full_name.rsplit_once('/')?;
    (last != id && full_name.starts_with("//")).then(|| format!("{parent}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_types_and_names_give_the_same_canonical_type() {
        for (asset_type, name, want) in [
            (
                "compute.googleapis.com/Instance",
                "//compute.googleapis.com/projects/p/zones/z/instances/vm",
                "gcp:compute/instance",
            ),
            (
                "storage.googleapis.com/Bucket",
                "//storage.googleapis.com/projects/_/buckets/b",
                "gcp:storage/bucket",
            ),
            (
                "compute.googleapis.com/Address",
                "//compute.googleapis.com/projects/p/regions/r/addresses/a",
                "gcp:compute/address",
            ),
            (
                "bigquery.googleapis.com/Dataset",
                "//bigquery.googleapis.com/projects/p/datasets/d",
                "gcp:bigquery/dataset",
            ),
            (
                "artifactregistry.googleapis.com/Repository",
                "//artifactregistry.googleapis.com/projects/p/locations/l/repositories/r",
                "gcp:artifactregistry/repository",
            ),
        ] {
            assert_eq!(canonical_type(asset_type), want, "{asset_type}");
            let parsed = GcpName::parse(name).expect(name);
            assert_eq!(parsed.resource_type, want, "{name}");
        }
        assert_eq!(canonical_type("k8s.io/Pod"), "gcp:k8s.io/pod");
        assert_eq!(canonical_type(" "), "");
        assert_eq!(canonical_type("Project"), "gcp:project");
    }

    #[test]
    fn relative_and_numeric_forms() {
        let full = "//compute.googleapis.com/projects/p/zones/z/instances/vm-1";
        assert_eq!(
            relative_name(full),
            Some("projects/p/zones/z/instances/vm-1")
        );
        assert_eq!(relative_name("projects/p"), None);
        assert_eq!(
            with_numeric_id(full, "8812").as_deref(),
            Some("//compute.googleapis.com/projects/p/zones/z/instances/8812")
        );
        assert_eq!(with_numeric_id(full, "vm-1"), None, "not a number");
        assert_eq!(with_numeric_id(full, ""), None);
        assert_eq!(with_numeric_id("//h/x/42", "42"), None, "already the id");
    }
}
