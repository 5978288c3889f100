//! Which Resource Explorer listings cover the scanned regions, decided from the account's
//! indexes alone (pure). An aggregator index holds every region that has an index, so one
//! listing there covers them all; without one, each scanned region with a local index is listed
//! on its own. A region with no index is not covered by any listing: it is named with what to
//! do, never silently left out.

use serde::{Deserialize, Serialize};

/// One Resource Explorer index of the account (`ListIndexes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    pub region: String,
    /// An `AGGREGATOR` index (it replicates every other index of the account); else `LOCAL`.
    pub aggregator: bool,
}

/// One `ListResources` listing: where it is called, over which view (`None`: the region's
/// default view), and which scanned regions it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listing {
    pub region: String,
    pub view_arn: Option<String>,
    pub covers: Vec<String>,
}

/// The listings to make and what they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub listings: Vec<Listing>,
    /// Scanned regions the listings cover, in scan order.
    pub covered: Vec<String>,
    /// Scanned regions no listing covers: `(region, why and what to do)`.
    pub uncovered: Vec<(String, String)>,
}

/// How to turn Resource Explorer on, for messages.
pub(crate) const SETUP_ADVICE: &str = "create an index in each region (aws resource-explorer-2 \
    create-index --region REGION), make one the aggregator (aws resource-explorer-2 \
    update-index-type --arn INDEX_ARN --type AGGREGATOR --region REGION) and give it a default \
    view that includes tags (aws resource-explorer-2 create-view --view-name all-resources \
    --included-properties Name=tags --region REGION, then aws resource-explorer-2 \
    associate-default-view --view-arn VIEW_ARN --region REGION)";

/// The region a view lives in (and must be called in), from its ARN
/// (`arn:aws:resource-explorer-2:REGION:ACCOUNT:view/NAME/ID`).
pub(crate) fn view_region(view_arn: &str) -> Option<&str> {
    let arn = crate::inventory::id::arn::parse(view_arn)?;
    (arn.service == "resource-explorer-2"
        && !arn.region.is_empty()
        && arn.resource.starts_with("view/"))
    .then_some(arn.region)
}

/// Where `ListIndexes` is called: the view's region when a view is named, else the first
/// scanned region (the answer lists the indexes of every region either way).
pub(crate) fn discovery_region(scanned: &[String], view_arn: Option<&str>) -> Option<String> {
    match view_arn {
        Some(view) => view_region(view).map(str::to_string),
        None => scanned.first().cloned(),
    }
}

/// The listings that cover `scanned` given the account's `indexes`, or why Resource Explorer
/// cannot cover any scanned region at all.
pub(crate) fn plan(
    indexes: &[Index],
    scanned: &[String],
    view_arn: Option<&str>,
) -> Result<Plan, String> {
    if indexes.is_empty() {
        return Err(format!(
            "Resource Explorer has no index in this account: {SETUP_ADVICE}"
        ));
    }
    let indexed = |region: &str| indexes.iter().any(|i| i.region == region);
    // Where each listing is called and whether it reaches every indexed region (an aggregator)
    // or only its own.
    let calls: Vec<(String, Option<String>, bool)> = match view_arn {
        Some(view) => {
            let Some(region) = view_region(view) else {
                return Err(format!(
                    "`{view}` is not a Resource Explorer view ARN \
                     (arn:aws:resource-explorer-2:REGION:ACCOUNT:view/NAME/ID)"
                ));
            };
            let Some(index) = indexes.iter().find(|i| i.region == region) else {
                return Err(format!(
                    "the view {view} is in {region}, which has no Resource Explorer index: \
                     {SETUP_ADVICE}"
                ));
            };
            vec![(region.to_string(), Some(view.to_string()), index.aggregator)]
        }
        None => match indexes.iter().find(|i| i.aggregator) {
            Some(a) => vec![(a.region.clone(), None, true)],
            None => scanned
                .iter()
                .filter(|r| indexed(r))
                .map(|r| (r.clone(), None, false))
                .collect(),
        },
    };
    let reaches = |call: &(String, Option<String>, bool), region: &str| {
        if call.2 {
            indexed(region)
        } else {
            call.0 == region
        }
    };
    let mut covered = Vec::new();
    let mut uncovered = Vec::new();
    for region in scanned {
        if calls.iter().any(|c| reaches(c, region)) {
            covered.push(region.clone());
        } else if indexed(region) {
            uncovered.push((
                region.clone(),
                format!(
                    "the view's index is a local one in another region, so it does not list \
                     {region}: name a view in the aggregator region, or make the view's index the \
                     aggregator (aws resource-explorer-2 update-index-type --type AGGREGATOR)"
                ),
            ));
        } else {
            uncovered.push((
                region.clone(),
                format!(
                    "Resource Explorer has no index in {region}: create one (aws \
                     resource-explorer-2 create-index --region {region}); an aggregator index \
                     then lists it too"
                ),
            ));
        }
    }
    if covered.is_empty() {
        let why = uncovered
            .first()
            .map(|(_, why)| why.clone())
            .unwrap_or_else(|| "no region was scanned".to_string());
        return Err(why);
    }
    let listings = calls
        .iter()
        .map(|c| Listing {
            region: c.0.clone(),
            view_arn: c.1.clone(),
            covers: covered.iter().filter(|r| reaches(c, r)).cloned().collect(),
        })
        .collect();
    Ok(Plan {
        listings,
        covered,
        uncovered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW_EU: &str = "arn:aws:resource-explorer-2:eu-west-1:123456789012:view/all/0a1b2c3d-0000-0000-0000-000000000000";

    fn regions(list: &[&str]) -> Vec<String> {
        list.iter().map(|r| r.to_string()).collect()
    }

    fn local(region: &str) -> Index {
        Index {
            region: region.into(),
            aggregator: false,
        }
    }

    fn aggregator(region: &str) -> Index {
        Index {
            region: region.into(),
            aggregator: true,
        }
    }

    #[test]
    fn no_index_says_how_to_turn_resource_explorer_on() {
        let why = plan(&[], &regions(&["us-east-1"]), None).unwrap_err();
        assert!(why.contains("no index in this account"), "{why}");
        assert!(why.contains("update-index-type") && why.contains("associate-default-view"));
    }

    #[test]
    fn an_aggregator_is_listed_once_and_covers_every_indexed_region() {
        let indexes = [
            local("us-east-1"),
            aggregator("eu-west-1"),
            local("ap-south-1"),
        ];
        let p = plan(
            &indexes,
            &regions(&["us-east-1", "eu-west-1", "sa-east-1"]),
            None,
        )
        .unwrap();
        assert_eq!(
            p.listings,
            vec![Listing {
                region: "eu-west-1".into(),
                view_arn: None,
                covers: regions(&["us-east-1", "eu-west-1"]),
            }]
        );
        assert_eq!(p.covered, regions(&["us-east-1", "eu-west-1"]));
        assert_eq!(p.uncovered.len(), 1);
        assert_eq!(p.uncovered[0].0, "sa-east-1");
        assert!(p.uncovered[0].1.contains("create-index --region sa-east-1"));
    }

    #[test]
    fn the_aggregator_may_sit_in_a_region_that_is_not_scanned() {
        let indexes = [aggregator("us-west-2"), local("us-east-1")];
        let p = plan(&indexes, &regions(&["us-east-1"]), None).unwrap();
        assert_eq!(p.listings[0].region, "us-west-2");
        assert_eq!(p.covered, regions(&["us-east-1"]));
        assert!(p.uncovered.is_empty());
    }

    #[test]
    fn without_an_aggregator_each_scanned_local_index_is_listed() {
        let indexes = [local("us-east-1"), local("eu-west-1"), local("ap-south-1")];
        let p = plan(
            &indexes,
            &regions(&["eu-west-1", "us-east-1", "sa-east-1"]),
            None,
        )
        .unwrap();
        let listed: Vec<&str> = p.listings.iter().map(|l| l.region.as_str()).collect();
        assert_eq!(listed, vec!["eu-west-1", "us-east-1"]);
        assert!(p.listings.iter().all(|l| l.view_arn.is_none()));
        assert_eq!(p.listings[0].covers, regions(&["eu-west-1"]));
        assert_eq!(p.listings[1].covers, regions(&["us-east-1"]));
        assert_eq!(p.covered, regions(&["eu-west-1", "us-east-1"]));
        assert_eq!(p.uncovered[0].0, "sa-east-1");
    }

    #[test]
    fn indexes_only_outside_the_scan_cover_nothing() {
        let why = plan(&[local("ap-south-1")], &regions(&["us-east-1"]), None).unwrap_err();
        assert!(why.contains("no index in us-east-1"), "{why}");
    }

    #[test]
    fn a_named_view_is_called_in_its_region() {
        let indexes = [aggregator("eu-west-1"), local("us-east-1")];
        let p = plan(
            &indexes,
            &regions(&["us-east-1", "eu-west-1"]),
            Some(VIEW_EU),
        )
        .unwrap();
        assert_eq!(
            p.listings,
            vec![Listing {
                region: "eu-west-1".into(),
                view_arn: Some(VIEW_EU.into()),
                covers: regions(&["us-east-1", "eu-west-1"]),
            }]
        );
        assert_eq!(p.covered, regions(&["us-east-1", "eu-west-1"]));
        assert_eq!(
            discovery_region(&regions(&["us-east-1"]), Some(VIEW_EU)).as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            discovery_region(&regions(&["us-east-1"]), None).as_deref(),
            Some("us-east-1")
        );
        assert_eq!(discovery_region(&[], None), None);
    }

    #[test]
    fn a_view_over_a_local_index_covers_its_region_only() {
        let indexes = [local("eu-west-1"), aggregator("us-east-1")];
        let p = plan(
            &indexes,
            &regions(&["us-east-1", "eu-west-1"]),
            Some(VIEW_EU),
        )
        .unwrap();
        assert_eq!(p.covered, regions(&["eu-west-1"]));
        assert_eq!(p.listings[0].covers, regions(&["eu-west-1"]));
        assert_eq!(p.uncovered[0].0, "us-east-1");
        assert!(
            p.uncovered[0].1.contains("local one"),
            "{}",
            p.uncovered[0].1
        );
    }

    #[test]
    fn a_view_without_an_index_or_that_is_no_view_arn_is_refused() {
        let why = plan(
            &[aggregator("us-east-1")],
            &regions(&["us-east-1"]),
            Some(VIEW_EU),
        )
        .unwrap_err();
        assert!(
            why.contains("eu-west-1, which has no Resource Explorer index"),
            "{why}"
        );
        for bad in [
            "not-an-arn",
            "arn:aws:s3:::bucket",
            "arn:aws:resource-explorer-2::1:view/x/y",
        ] {
            assert_eq!(view_region(bad), None, "{bad}");
            let why = plan(
                &[aggregator("us-east-1")],
                &regions(&["us-east-1"]),
                Some(bad),
            )
            .unwrap_err();
            assert!(why.contains("is not a Resource Explorer view ARN"), "{why}");
        }
        assert_eq!(view_region(VIEW_EU), Some("eu-west-1"));
    }
}
