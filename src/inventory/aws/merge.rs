//! The union of the Tagging API's listing and Resource Explorer's, by ARN (pure).
//!
//! The Tagging API reads tags where they live, so where both list a resource its tags win
//! (Resource Explorer's index can lag behind a tag change). A resource only Resource Explorer
//! lists — never tagged, or of a type the Tagging API does not cover — joins the estate with
//! the tags Resource Explorer showed, or none when its view shows no tags.

use std::collections::{HashMap, HashSet};

use crate::inventory::{Resource, Tags};

/// How the two listings overlapped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MergeStats {
    /// Distinct resources Resource Explorer listed.
    pub explorer: usize,
    /// Of those, also listed by the Tagging API (its tags kept).
    pub in_both: usize,
    /// Listed only by Resource Explorer: they joined the estate.
    pub only_in_explorer: usize,
    /// Of those, how many Resource Explorer showed with tags (the Tagging API would list
    /// them: a part of its scan failed, or its index is behind).
    pub only_in_explorer_tagged: usize,
    /// Listed by both with different tags (the Tagging API's were kept).
    pub tags_differ: usize,
    /// Distinct resources listed only by the Tagging API (not yet indexed by Resource Explorer,
    /// or left out by its view).
    pub only_in_tagging: usize,
}

/// Appends to `tagging` the resources only `explorer` lists (once each, in `explorer`'s order)
/// and says how the listings overlapped. `tagging` is otherwise left as it is — its own repeats
/// (global resources listed by every region) are dropped and counted later, as without
/// Resource Explorer.
pub(crate) fn union(tagging: &mut Vec<Resource>, explorer: Vec<Resource>) -> MergeStats {
    let mut stats = MergeStats::default();
    let mut joined = Vec::new();
    {
        let mut by_arn: HashMap<&str, &Tags> = HashMap::with_capacity(tagging.len());
        for r in tagging.iter() {
            by_arn.entry(r.id.as_str()).or_insert(&r.tags);
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(explorer.len());
        for (i, r) in explorer.iter().enumerate() {
            if !seen.insert(r.id.as_str()) {
                continue;
            }
            stats.explorer += 1;
            match by_arn.get(r.id.as_str()) {
                Some(tags) => {
                    stats.in_both += 1;
                    if **tags != r.tags {
                        stats.tags_differ += 1;
                    }
                }
                None => {
                    stats.only_in_explorer += 1;
                    if !r.tags.is_empty() {
                        stats.only_in_explorer_tagged += 1;
                    }
                    joined.push(i);
                }
            }
        }
        stats.only_in_tagging = by_arn.len() - stats.in_both;
    }
    let mut explorer: Vec<Option<Resource>> = explorer.into_iter().map(Some).collect();
    tagging.extend(joined.into_iter().filter_map(|i| explorer[i].take()));
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::id::arn::resource_from_arn;

    fn r(arn: &str, tags: &[(&str, &str)]) -> Resource {
        let tags = tags
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        resource_from_arn(arn, tags, "global", "123456789012").expect("an ARN")
    }

    fn ids(resources: &[Resource]) -> Vec<&str> {
        resources.iter().map(|r| r.id.as_str()).collect()
    }

    const A: &str = "arn:aws:ec2:us-east-1:123456789012:volume/vol-a";
    const B: &str = "arn:aws:ec2:us-east-1:123456789012:volume/vol-b";
    const C: &str = "arn:aws:sqs:eu-west-1:123456789012:queue-c";
    const S3: &str = "arn:aws:s3:::bucket-s";

    #[test]
    fn the_tagging_apis_tags_win_where_both_list_a_resource() {
        let mut tagging = vec![r(A, &[("Environment", "production")])];
        let stats = union(&mut tagging, vec![r(A, &[("Environment", "staging")])]);
        assert_eq!(tagging.len(), 1);
        assert_eq!(tagging[0].tag("Environment"), Some("production"));
        assert_eq!(
            stats,
            MergeStats {
                explorer: 1,
                in_both: 1,
                tags_differ: 1,
                ..MergeStats::default()
            }
        );
    }

    #[test]
    fn never_tagged_resources_join_with_no_tags_and_re_tags_are_kept_when_only_re_has_them() {
        let mut tagging = vec![r(A, &[("Owner", "a")])];
        let explorer = vec![r(A, &[("Owner", "a")]), r(B, &[]), r(C, &[("Owner", "c")])];
        let stats = union(&mut tagging, explorer);
        assert_eq!(ids(&tagging), vec![A, B, C]);
        assert!(tagging[1].tags.is_empty());
        assert_eq!(tagging[2].tag("Owner"), Some("c"));
        assert_eq!(
            stats,
            MergeStats {
                explorer: 3,
                in_both: 1,
                only_in_explorer: 2,
                only_in_explorer_tagged: 1,
                tags_differ: 0,
                only_in_tagging: 0,
            }
        );
    }

    #[test]
    fn repeats_are_joined_once_and_the_tagging_apis_own_repeats_are_left_for_later() {
        // S3 listed by two Tagging API regions: both copies stay (dropped and counted later).
        let mut tagging = vec![
            r(S3, &[("Owner", "s")]),
            r(A, &[]),
            r(S3, &[("Owner", "s")]),
        ];
        let explorer = vec![r(B, &[]), r(S3, &[]), r(B, &[]), r(C, &[])];
        let stats = union(&mut tagging, explorer);
        assert_eq!(ids(&tagging), vec![S3, A, S3, B, C]);
        assert_eq!(stats.explorer, 3);
        assert_eq!(stats.in_both, 1);
        assert_eq!(stats.tags_differ, 1);
        assert_eq!(stats.only_in_explorer, 2);
        assert_eq!(stats.only_in_tagging, 1, "A: distinct, S3 counted once");
    }

    #[test]
    fn either_side_may_be_empty() {
        let mut tagging = Vec::new();
        let stats = union(&mut tagging, vec![r(A, &[]), r(B, &[("k", "v")])]);
        assert_eq!(ids(&tagging), vec![A, B]);
        assert_eq!(stats.only_in_explorer, 2);
        assert_eq!(stats.only_in_explorer_tagged, 1);

        let mut tagging = vec![r(A, &[]), r(B, &[])];
        let stats = union(&mut tagging, Vec::new());
        assert_eq!(ids(&tagging), vec![A, B]);
        assert_eq!(
            stats,
            MergeStats {
                only_in_tagging: 2,
                ..MergeStats::default()
            }
        );

        let mut tagging = Vec::new();
        assert_eq!(union(&mut tagging, Vec::new()), MergeStats::default());
        assert!(tagging.is_empty());
    }

    #[test]
    fn the_union_holds_every_arn_of_either_listing_exactly_once_after_dedupe() {
        // Every subset pair of four ARNs, with and without tags on either side.
        let all = [A, B, C, S3];
        for left in 0u32..16 {
            for right in 0u32..16 {
                for tagged in [false, true] {
                    let pick = |mask: u32, tags: &[(&str, &str)]| -> Vec<Resource> {
                        (0..4)
                            .filter(|i| mask & (1 << i) != 0)
                            .map(|i| r(all[i], tags))
                            .collect()
                    };
                    let mut tagging = pick(left, &[("side", "tagging")]);
                    let explorer = pick(right, if tagged { &[("side", "explorer")] } else { &[] });
                    let stats = union(&mut tagging, explorer);
                    let both = (left & right).count_ones() as usize;
                    assert_eq!(stats.in_both, both);
                    assert_eq!(
                        stats.only_in_explorer,
                        (right & !left).count_ones() as usize
                    );
                    assert_eq!(stats.only_in_tagging, (left & !right).count_ones() as usize);
                    assert_eq!(stats.tags_differ, both);
                    assert_eq!(tagging.len(), (left | right).count_ones() as usize);
                    for res in &tagging {
                        let from_tagging =
                            left & (1 << all.iter().position(|a| *a == res.id).unwrap()) != 0;
                        let expected = if from_tagging {
                            Some("tagging")
                        } else if tagged {
                            Some("explorer")
                        } else {
                            None
                        };
                        assert_eq!(res.tag("side"), expected, "{}", res.id);
                    }
                }
            }
        }
    }
}
