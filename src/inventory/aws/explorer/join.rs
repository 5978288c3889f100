//! Joining a Resource Explorer listing to the Tagging API's scan (no I/O): the resources only
//! Resource Explorer knows join the estate (`merge::union`), its parts join the report, and
//! its coverage says what it covered, what joined and what kept it from covering the rest.
//!
//! A setup problem (no index, no permission, no default view) is stated in coverage. When
//! Resource Explorer is required (`--aws-coverage resource-explorer`) it is also a failed part
//! of the scan, so `data_quality.failures` names it and the answer is `partial`.

use super::ExplorerListing;
use crate::inventory::Interner;
use crate::inventory::aws::merge::{MergeStats, union};
use crate::inventory::file::GLOBAL_REGION;
use crate::inventory::id::arn::resource_from_arn_in;
use crate::inventory::{
    CoverageFailure, Resource, ScanPart, ScanReport, SourceCoverage, SourceKind,
};

/// Adds what `listing` knows and the Tagging API did not to `resources`, its parts to `report`,
/// and returns Resource Explorer's coverage.
pub(crate) fn join(
    listing: ExplorerListing,
    required: bool,
    resources: &mut Vec<Resource>,
    report: &mut ScanReport,
    account: &str,
    resource_types: &[String],
) -> SourceCoverage {
    let mut coverage = SourceCoverage::new(SourceKind::ResourceExplorer, 0);
    coverage.accounts = vec![account.to_string()];
    coverage.regions = listing.covered;
    coverage.resource_types = resource_types.to_vec();
    let mut texts = Interner::default();
    let explorer: Vec<Resource> = listing
        .entries
        .into_iter()
        .filter_map(|e| {
            let tags = texts.share_tags(e.tags.unwrap_or_default());
            let built = resource_from_arn_in(&mut texts, &e.arn, tags, GLOBAL_REGION, account);
            if built.is_none() {
                tracing::warn!(arn = %e.arn, "ListResources returned a value that is not an ARN");
            }
            built
        })
        .collect();
    let listed_anything = !listing.parts.is_empty() && listing.parts.iter().any(|p| p.ok);
    let stats = union(resources, explorer);
    coverage.resources = stats.explorer;
    if listed_anything {
        coverage.only_in_this_source = Some(stats.only_in_explorer);
        coverage.note = Some(note(&stats));
        tracing::info!(
            listed = stats.explorer,
            joined = stats.only_in_explorer,
            tags_differ = stats.tags_differ,
            "Resource Explorer listing merged"
        );
    }
    for part in listing.parts {
        if let Some(error) = &part.error {
            coverage.failed.push(CoverageFailure {
                scope: part.scope.clone(),
                reason: error.clone(),
            });
        }
        report.complete &= part.ok;
        report.parts.push(part);
    }
    for failure in listing.setup {
        if required {
            let reason = format!(
                "Resource Explorer is required (--aws-coverage resource-explorer) and cannot be \
                 used: {}; the Tagging API's listing is kept, without never-tagged resources",
                failure.reason
            );
            report.complete = false;
            report.parts.push(ScanPart {
                scope: failure.scope.clone(),
                ok: false,
                resources: 0,
                pages: 0,
                error: Some(reason.clone()),
                cached: false,
            });
            coverage.failed.push(CoverageFailure {
                scope: failure.scope,
                reason,
            });
        } else {
            coverage.failed.push(failure);
        }
    }
    coverage
}

/// What the merge did, in words.
fn note(stats: &MergeStats) -> String {
    let mut text = format!(
        "{} resources listed only by Resource Explorer joined the estate (never tagged, or of \
         types the Tagging API does not list), {} with the tags Resource Explorer showed",
        stats.only_in_explorer, stats.only_in_explorer_tagged
    );
    text.push_str(&format!(
        "; {} listed by both (the Tagging API's tags kept",
        stats.in_both
    ));
    if stats.tags_differ > 0 {
        text.push_str(&format!(
            ", {} of them differ: Resource Explorer's index lags behind tag changes",
            stats.tags_differ
        ));
    }
    text.push(')');
    if stats.only_in_tagging > 0 {
        text.push_str(&format!(
            "; {} listed only by the Tagging API (not yet indexed, or outside the view)",
            stats.only_in_tagging
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Coverage;
    use crate::inventory::aws::explorer::entry::Entry;
    use crate::inventory::coverage::NeverTagged;

    const ACCOUNT: &str = "123456789012";

    fn tagged(arn: &str) -> Resource {
        crate::inventory::id::arn::resource_from_arn(
            arn,
            vec![("Owner".into(), "a".into())],
            GLOBAL_REGION,
            ACCOUNT,
        )
        .unwrap()
    }

    fn entry(arn: &str, tags: Option<&[(&str, &str)]>) -> Entry {
        Entry {
            arn: arn.into(),
            region: "us-east-1".into(),
            resource_type: "ec2:volume".into(),
            tags: tags.map(|t| t.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
        }
    }

    fn part(scope: &str, ok: bool) -> ScanPart {
        ScanPart {
            scope: scope.into(),
            ok,
            resources: 0,
            pages: 1,
            error: (!ok).then(|| {
                "ListResources in us-east-1 failed: AWS answered ThrottlingException".into()
            }),
            cached: false,
        }
    }

    fn setup(scope: &str, reason: &str) -> CoverageFailure {
        CoverageFailure {
            scope: scope.into(),
            reason: reason.into(),
        }
    }

    const V1: &str = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1";
    const V2: &str = "arn:aws:ec2:us-east-1:123456789012:volume/vol-2";
    const V3: &str = "arn:aws:ec2:us-east-1:123456789012:volume/vol-3";

    #[test]
    fn a_working_listing_completes_the_estate_and_the_coverage() {
        let mut resources = vec![tagged(V1)];
        let mut report = ScanReport {
            complete: true,
            ..ScanReport::default()
        };
        let listing = ExplorerListing {
            entries: vec![
                entry(V1, Some(&[])),
                entry(V2, None),
                entry(V3, Some(&[("Owner", "b")])),
                entry("not an arn", None),
            ],
            parts: vec![part("aws resource-explorer us-east-1", true)],
            covered: vec!["us-east-1".into()],
            ..ExplorerListing::default()
        };
        let re = join(listing, false, &mut resources, &mut report, ACCOUNT, &[]);
        assert_eq!(resources.len(), 3);
        assert_eq!(
            resources[0].tag("Owner"),
            Some("a"),
            "the Tagging API's tags win"
        );
        assert!(resources[1].tags.is_empty(), "never tagged: no tags");
        assert_eq!(
            resources[2].tag("Owner"),
            Some("b"),
            "RE's tags when only RE lists it"
        );
        assert_eq!(re.resources, 3);
        assert_eq!(re.only_in_this_source, Some(2));
        assert!(
            re.note
                .as_deref()
                .unwrap()
                .starts_with("2 resources listed only by Resource Explorer")
        );
        assert_eq!(re.never_tagged, NeverTagged::Included);
        assert!(report.complete);
        assert_eq!(report.parts.len(), 1);
        let c = Coverage::of(vec![SourceCoverage::new(SourceKind::TaggingApi, 1), re]);
        assert!(c.complete && c.never_tagged_included, "{c:?}");
    }

    #[test]
    fn a_missing_index_is_stated_in_coverage_and_the_tagging_answer_is_kept() {
        for required in [false, true] {
            let mut resources = vec![tagged(V1)];
            let mut report = ScanReport {
                complete: true,
                ..ScanReport::default()
            };
            let listing = ExplorerListing {
                setup: vec![setup(
                    "aws",
                    "Resource Explorer has no index in this account",
                )],
                ..ExplorerListing::default()
            };
            let re = join(listing, required, &mut resources, &mut report, ACCOUNT, &[]);
            assert_eq!(resources.len(), 1, "the Tagging API's answer is kept");
            assert_eq!(re.only_in_this_source, None);
            assert_eq!(re.failed.len(), 1);
            let c = Coverage::of(vec![
                SourceCoverage::new(SourceKind::TaggingApi, 1),
                re.clone(),
            ]);
            assert!(!c.never_tagged_included && !c.complete);
            if required {
                assert!(!report.complete, "required: a failed part");
                assert_eq!(report.parts.len(), 1);
                let error = report.parts[0].error.as_deref().unwrap();
                assert!(
                    error.starts_with("Resource Explorer is required"),
                    "{error}"
                );
                assert!(error.contains("no index in this account"));
                assert_eq!(re.failed[0].reason, error);
            } else {
                assert!(report.complete, "auto: coverage only");
                assert!(report.parts.is_empty());
                assert_eq!(
                    re.failed[0].reason,
                    "Resource Explorer has no index in this account"
                );
            }
        }
    }

    #[test]
    fn a_failed_listing_is_a_failed_part_in_every_mode() {
        let mut resources = vec![tagged(V1)];
        let mut report = ScanReport {
            complete: true,
            ..ScanReport::default()
        };
        let listing = ExplorerListing {
            entries: vec![entry(V2, None)],
            parts: vec![
                part("aws resource-explorer us-east-1", true),
                part("aws resource-explorer eu-west-1", false),
            ],
            covered: vec!["us-east-1".into()],
            setup: vec![setup(
                "aws ap-south-1",
                "Resource Explorer has no index in ap-south-1",
            )],
            ..ExplorerListing::default()
        };
        let re = join(
            listing,
            false,
            &mut resources,
            &mut report,
            ACCOUNT,
            &["ec2".into()],
        );
        assert!(!report.complete);
        assert_eq!(report.parts.len(), 2);
        assert_eq!(resources.len(), 2);
        assert_eq!(re.resource_types, vec!["ec2".to_string()]);
        let scopes: Vec<&str> = re.failed.iter().map(|f| f.scope.as_str()).collect();
        assert_eq!(
            scopes,
            vec!["aws resource-explorer eu-west-1", "aws ap-south-1"]
        );
        let c = Coverage::of(vec![SourceCoverage::new(SourceKind::TaggingApi, 1), re]);
        assert!(c.never_tagged_included && !c.complete);
        assert_eq!(c.warnings.len(), 2);
    }
}
