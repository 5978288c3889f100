//! What a scan could see, stated rather than implied: per source, whether resources that were
//! never tagged are listed at all, which accounts, regions and types were covered, and which
//! failed.
//!
//! The Resource Groups Tagging API (and a file of its output) never lists a resource that was
//! never tagged — on real AWS the worst offenders are invisible to it, and a score built on it
//! alone is flattering. So a scan is `complete` only when every source lists never-tagged
//! resources *and* nothing failed; every other case carries a warning that says what is missing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where resources were listed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// AWS Resource Groups Tagging API (`GetResources`), live.
    TaggingApi,
    /// AWS Resource Explorer (`ListResources`), live.
    ResourceExplorer,
    /// AWS Config (`SelectResourceConfig` / `SelectAggregateResourceConfig`), live.
    AwsConfig,
    /// A file of `aws resourcegroupstaggingapi get-resources` output.
    TaggingApiFile,
    /// An Azure Resource Graph export (`az graph query`).
    AzureResourceGraph,
    /// A GCP Cloud Asset Inventory export (`gcloud asset search-all-resources` / `export`).
    GcpAssetInventory,
    /// A generated estate (the built-in demo or the irregular evaluation estate).
    Generated,
}

impl SourceKind {
    /// Whether the source lists resources that were never tagged.
    pub fn lists_never_tagged(self) -> bool {
        !matches!(self, SourceKind::TaggingApi | SourceKind::TaggingApiFile)
    }

    /// The source's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::TaggingApi => "the Tagging API",
            SourceKind::ResourceExplorer => "Resource Explorer",
            SourceKind::AwsConfig => "AWS Config",
            SourceKind::TaggingApiFile => "a Tagging API file",
            SourceKind::AzureResourceGraph => "Azure Resource Graph",
            SourceKind::GcpAssetInventory => "GCP Cloud Asset Inventory",
            SourceKind::Generated => "the generated estate",
        }
    }
}

/// Whether resources that were never tagged are in the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NeverTagged {
    /// The source lists every resource, tagged or not.
    Included,
    /// Only resources that have (or once had) a tag are listed: never-tagged ones are missing.
    TaggingApiOnly,
}

/// Something a source was asked to cover and could not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CoverageFailure {
    /// What failed: an account, `account region`, a region, a file, a source.
    pub scope: String,
    /// Why, and what to do.
    pub reason: String,
}

/// What one source covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceCoverage {
    pub source: SourceKind,
    pub never_tagged: NeverTagged,
    /// What this source cannot see, in words, when something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Resources this source listed (before merging with other sources).
    pub resources: usize,
    /// Of those, how many no other source listed: they joined the estate from this one
    /// (Resource Explorer: never tagged, or of a type the Tagging API does not list). Absent
    /// for a source that was not merged with another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_in_this_source: Option<usize>,
    /// Accounts (subscriptions, projects) covered, as `id` or `id (name)`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Regions (locations) covered.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Resource types the listing was limited to; empty means every type the source lists.
    #[serde(default)]
    pub resource_types: Vec<String>,
    /// Accounts, regions or parts that failed, with the reason.
    #[serde(default)]
    pub failed: Vec<CoverageFailure>,
}

/// The note a Tagging API listing always carries.
pub(crate) const TAGGING_API_NOTE: &str =
    "resources that were never tagged are not listed by the Tagging API";

impl SourceCoverage {
    /// A source's coverage with its never-tagged behaviour filled in from its kind.
    pub fn new(source: SourceKind, resources: usize) -> SourceCoverage {
        let never_tagged = if source.lists_never_tagged() {
            NeverTagged::Included
        } else {
            NeverTagged::TaggingApiOnly
        };
        SourceCoverage {
            source,
            never_tagged,
            note: (never_tagged == NeverTagged::TaggingApiOnly).then(|| TAGGING_API_NOTE.into()),
            resources,
            only_in_this_source: None,
            accounts: Vec::new(),
            regions: Vec::new(),
            resource_types: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Whether this source's listing counts as including never-tagged resources: it lists them
    /// by kind, and did not fail without listing anything (a Resource Explorer with no index
    /// includes nothing).
    pub fn includes_never_tagged(&self) -> bool {
        self.never_tagged == NeverTagged::Included
            && !(self.resources == 0 && self.regions.is_empty() && !self.failed.is_empty())
    }
}

/// What the whole scan covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Coverage {
    /// True only when never-tagged resources are included and no account, region, type or part
    /// failed. A scan with the Tagging API alone is never complete.
    pub complete: bool,
    /// True when at least one source that lists never-tagged resources covered the estate.
    pub never_tagged_included: bool,
    pub sources: Vec<SourceCoverage>,
    /// What the answer leaves out, in words, for people (`tagwarden check` prints these).
    pub warnings: Vec<String>,
}

impl Coverage {
    /// The scan's coverage from its sources' coverage. Never-tagged resources count as included
    /// when a source that lists them ran (its listing is merged with the others'); the warnings
    /// name each failure and, when only Tagging API listings ran, the missing never-tagged
    /// resources.
    pub fn of(sources: Vec<SourceCoverage>) -> Coverage {
        let never_tagged_included = sources.iter().any(SourceCoverage::includes_never_tagged);
        let mut warnings = Vec::new();
        if !sources.is_empty() && !never_tagged_included {
            warnings.push(format!(
                "{TAGGING_API_NOTE}: counts, scores and the cost gap leave them out and are \
                 flattering; use Resource Explorer (--aws-coverage resource-explorer) or AWS \
                 Config (--aws-coverage config) to include them"
            ));
        }
        for s in &sources {
            for f in &s.failed {
                warnings.push(format!(
                    "{} did not cover {}: {}",
                    s.source.label(),
                    f.scope,
                    f.reason
                ));
            }
        }
        let failed = sources.iter().any(|s| !s.failed.is_empty());
        Coverage {
            complete: !sources.is_empty() && never_tagged_included && !failed,
            never_tagged_included,
            sources,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tagging_api_alone_is_never_complete() {
        let c = Coverage::of(vec![SourceCoverage::new(SourceKind::TaggingApi, 10)]);
        assert!(!c.complete);
        assert!(!c.never_tagged_included);
        assert_eq!(c.sources[0].never_tagged, NeverTagged::TaggingApiOnly);
        assert_eq!(c.sources[0].note.as_deref(), Some(TAGGING_API_NOTE));
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].starts_with(TAGGING_API_NOTE));
        let file = Coverage::of(vec![SourceCoverage::new(SourceKind::TaggingApiFile, 1)]);
        assert!(!file.complete);
    }

    #[test]
    fn a_source_listing_never_tagged_resources_completes_the_tagging_api() {
        let c = Coverage::of(vec![
            SourceCoverage::new(SourceKind::TaggingApi, 10),
            SourceCoverage::new(SourceKind::ResourceExplorer, 14),
        ]);
        assert!(c.complete);
        assert!(c.never_tagged_included);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn a_failure_makes_coverage_incomplete_and_is_named() {
        let mut s = SourceCoverage::new(SourceKind::AwsConfig, 3);
        s.failed.push(CoverageFailure {
            scope: "222222222222".into(),
            reason: "AccessDenied".into(),
        });
        let c = Coverage::of(vec![s]);
        assert!(!c.complete);
        assert!(c.never_tagged_included);
        assert_eq!(
            c.warnings,
            vec!["AWS Config did not cover 222222222222: AccessDenied".to_string()]
        );
    }

    #[test]
    fn a_source_that_failed_without_listing_anything_includes_nothing() {
        let mut re = SourceCoverage::new(SourceKind::ResourceExplorer, 0);
        re.failed.push(CoverageFailure {
            scope: "aws".into(),
            reason: "Resource Explorer has no index in this account".into(),
        });
        let c = Coverage::of(vec![
            SourceCoverage::new(SourceKind::TaggingApi, 10),
            re.clone(),
        ]);
        assert!(!c.never_tagged_included);
        assert!(!c.complete);
        assert!(
            c.warnings[0].starts_with(TAGGING_API_NOTE),
            "{:?}",
            c.warnings
        );
        assert_eq!(
            c.warnings[1],
            "Resource Explorer did not cover aws: Resource Explorer has no index in this account"
        );
        // Covering a region (even an empty one) or listing something counts.
        let mut empty_region = re.clone();
        empty_region.regions = vec!["us-east-1".into()];
        assert!(empty_region.includes_never_tagged());
        let mut listed = re;
        listed.resources = 1;
        assert!(listed.includes_never_tagged());
        assert!(SourceCoverage::new(SourceKind::ResourceExplorer, 0).includes_never_tagged());
    }

    #[test]
    fn no_source_is_not_complete() {
        let c = Coverage::of(Vec::new());
        assert!(!c.complete);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn generated_and_exported_estates_list_never_tagged_resources() {
        for kind in [
            SourceKind::Generated,
            SourceKind::AzureResourceGraph,
            SourceKind::GcpAssetInventory,
            SourceKind::ResourceExplorer,
            SourceKind::AwsConfig,
        ] {
            assert!(kind.lists_never_tagged(), "{kind:?}");
            assert!(SourceCoverage::new(kind, 0).note.is_none());
        }
    }
}
