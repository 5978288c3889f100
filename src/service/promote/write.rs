//! Carrying out a plan's writes through a `TagWriter`: batches of one account, region and
//! identical tag set, at most 20 ARNs and 50 tags each; per-ARN failures with a 5xx status
//! retried a bounded number of times with backoff (the SDK already retries throttling of a
//! whole call, but never an entry of `FailedResourcesMap`); then every written ARN read back
//! with `GetResources(ResourceARNList)`, and only what AWS shows counts as written.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::plan::Entry;
use crate::inventory::aws::writer::{
    FailedResource, MAX_ARNS_PER_READ, MAX_ARNS_PER_WRITE, MAX_TAGS_PER_WRITE, TagWriter,
};

/// Extra rounds for entries AWS failed with a 5xx status.
const RETRY_ROUNDS: u32 = 3;

/// One `TagResources` call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Batch {
    pub account: String,
    pub region: String,
    pub tags: BTreeMap<String, String>,
    pub arns: Vec<String>,
}

/// The calls for `entries`: grouped by (account, region, tag set), ARNs in chunks of 20, tag
/// sets over 50 split in chunks of 50 keys. Deterministic order.
pub(crate) fn batches(entries: &[Entry]) -> Vec<Batch> {
    type Group<'a> = (&'a str, &'a str, &'a BTreeMap<String, String>);
    let mut groups: BTreeMap<Group<'_>, Vec<String>> = BTreeMap::new();
    for e in entries.iter().filter(|e| !e.tags.is_empty()) {
        groups
            .entry((&e.account, &e.region, &e.tags))
            .or_default()
            .push(e.arn.clone());
    }
    let mut out = Vec::new();
    for ((account, region, tags), mut arns) in groups {
        arns.sort();
        arns.dedup();
        let pairs: Vec<(&String, &String)> = tags.iter().collect();
        for tag_chunk in pairs.chunks(MAX_TAGS_PER_WRITE) {
            let tags: BTreeMap<String, String> = tag_chunk
                .iter()
                .map(|(k, v)| ((*k).clone(), (*v).clone()))
                .collect();
            for arn_chunk in arns.chunks(MAX_ARNS_PER_WRITE) {
                out.push(Batch {
                    account: account.to_string(),
                    region: region.to_string(),
                    tags: tags.clone(),
                    arns: arn_chunk.to_vec(),
                });
            }
        }
    }
    out
}

/// Whether a failed entry is worth another try: AWS says it failed on its side (5xx) or
/// throttled that resource (429, a `Throttl…` code).
pub(crate) fn retryable(f: &FailedResource) -> bool {
    f.status_code >= 500 || f.status_code == 429 || f.error_code.starts_with("Throttl")
}

/// What became of one ARN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// Written, and AWS shows every planned tag with its value.
    Promoted,
    /// AWS refused it (per ARN, or the whole call failed).
    Failed {
        /// AWS's error code (e.g. `InternalServiceException`, `InvalidParameterException`,
        /// a tag policy's refusal), or `CallFailed` when the whole call failed.
        error_code: String,
        /// 0 when AWS gave none.
        status_code: i32,
        message: String,
        /// Attempts made for this ARN.
        attempts: u32,
    },
    /// AWS accepted the write but the read-back does not show it (or could not be made).
    Unverified {
        /// Planned tags AWS does not show with the planned value.
        missing: Vec<String>,
        message: String,
    },
}

/// Writes every entry, retries 5xx failures, reads the written ARNs back. Returns each ARN's
/// outcome (every entry gets one).
pub(crate) async fn execute(
    writer: &dyn TagWriter,
    entries: &[Entry],
    backoff: Duration,
) -> BTreeMap<String, Outcome> {
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut attempts: BTreeMap<String, u32> = BTreeMap::new();
    let mut pending: Vec<Entry> = entries.to_vec();
    for round in 0..=RETRY_ROUNDS {
        if pending.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(backoff * 2u32.pow(round - 1)).await;
        }
        let mut again: Vec<String> = Vec::new();
        for batch in batches(&pending) {
            for arn in &batch.arns {
                *attempts.entry(arn.clone()).or_default() += 1;
            }
            let failed = match writer
                .tag_resources(&batch.account, &batch.region, &batch.arns, &batch.tags)
                .await
            {
                Ok(failed) => failed,
                Err(why) => {
                    for arn in &batch.arns {
                        outcomes.insert(arn.clone(), call_failed(&why, attempts[arn]));
                    }
                    continue;
                }
            };
            for f in failed {
                if !batch.arns.contains(&f.arn) {
                    continue;
                }
                if retryable(&f) && round < RETRY_ROUNDS {
                    again.push(f.arn.clone());
                }
                outcomes.insert(
                    f.arn.clone(),
                    Outcome::Failed {
                        error_code: f.error_code,
                        status_code: f.status_code,
                        message: f.message,
                        attempts: attempts[&f.arn],
                    },
                );
            }
        }
        // An ARN is retried whole (all its tags), so a split tag set never half-applies.
        pending = entries
            .iter()
            .filter(|e| again.contains(&e.arn))
            .cloned()
            .collect();
        for e in &pending {
            outcomes.remove(&e.arn);
        }
    }
    verify(writer, entries, &mut outcomes, backoff).await;
    outcomes
}

fn call_failed(why: &str, attempts: u32) -> Outcome {
    Outcome::Failed {
        error_code: "CallFailed".into(),
        status_code: 0,
        message: why.to_string(),
        attempts,
    }
}

/// Reads back every entry without a failure; each becomes promoted or unverified. The
/// Tagging API is eventually consistent — a tag just written may not show in `GetResources`
/// yet — so entries still missing a tag are read again, with the write retries' backoff,
/// before they are called unverified.
async fn verify(
    writer: &dyn TagWriter,
    entries: &[Entry],
    outcomes: &mut BTreeMap<String, Outcome>,
    backoff: Duration,
) {
    let mut todo: Vec<Entry> = entries
        .iter()
        .filter(|e| !outcomes.contains_key(&e.arn))
        .cloned()
        .collect();
    for round in 0..=RETRY_ROUNDS {
        if round > 0 {
            tokio::time::sleep(backoff * 2u32.pow(round - 1)).await;
        }
        let mut read = BTreeMap::new();
        read_back(writer, &todo, &mut read).await;
        todo.retain(|e| matches!(read.get(&e.arn), Some(Outcome::Unverified { .. })));
        if round < RETRY_ROUNDS {
            for e in &todo {
                read.remove(&e.arn);
            }
        }
        outcomes.extend(read);
        if todo.is_empty() {
            break;
        }
    }
}

/// One read-back of `entries` not yet in `outcomes`.
async fn read_back(
    writer: &dyn TagWriter,
    entries: &[Entry],
    outcomes: &mut BTreeMap<String, Outcome>,
) {
    let mut by_place: BTreeMap<(&str, &str), Vec<&Entry>> = BTreeMap::new();
    for e in entries.iter().filter(|e| !outcomes.contains_key(&e.arn)) {
        by_place.entry((&e.account, &e.region)).or_default().push(e);
    }
    for ((account, region), list) in by_place {
        for chunk in list.chunks(MAX_ARNS_PER_READ) {
            let arns: Vec<String> = chunk.iter().map(|e| e.arn.clone()).collect();
            let live = writer.read_tags(account, region, &arns).await;
            for e in chunk {
                let outcome = match &live {
                    Err(why) => Outcome::Unverified {
                        missing: e.tags.keys().cloned().collect(),
                        message: format!("the tags could not be read back: {why}"),
                    },
                    Ok(live) => {
                        let held = live.get(&e.arn);
                        let missing: Vec<String> = e
                            .tags
                            .iter()
                            .filter(|(k, v)| held.and_then(|h| h.get(*k)) != Some(*v))
                            .map(|(k, _)| k.clone())
                            .collect();
                        if missing.is_empty() {
                            Outcome::Promoted
                        } else {
                            Outcome::Unverified {
                                missing,
                                message: "AWS accepted the write but GetResources does not \
                                          show these tags with the planned values"
                                    .into(),
                            }
                        }
                    }
                };
                outcomes.insert(e.arn.clone(), outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::inventory::aws::writer::LiveTags;

    fn entry(arn: &str, region: &str, tags: &[(&str, &str)]) -> Entry {
        Entry {
            arn: arn.into(),
            account: "1".into(),
            region: region.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            replaces: BTreeMap::new(),
            virtual_tag_ids: vec![],
        }
    }

    #[test]
    fn batches_group_by_region_and_tag_set_in_twenties() {
        let mut entries: Vec<Entry> = (0..45)
            .map(|i| {
                entry(
                    &format!("arn:aws:ec2:r1:1:instance/i-{i:02}"),
                    "r1",
                    &[("A", "1")],
                )
            })
            .collect();
        entries.push(entry("arn:aws:ec2:r2:1:instance/j", "r2", &[("A", "1")]));
        entries.push(entry("arn:aws:ec2:r1:1:instance/k", "r1", &[("A", "2")]));
        let b = batches(&entries);
        let shape: Vec<(&str, usize, &str)> = b
            .iter()
            .map(|b| (b.region.as_str(), b.arns.len(), b.tags["A"].as_str()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("r1", 20, "1"),
                ("r1", 20, "1"),
                ("r1", 5, "1"),
                ("r1", 1, "2"),
                ("r2", 1, "1")
            ]
        );
        let many: Vec<(String, String)> =
            (0..120).map(|i| (format!("k{i:03}"), "v".into())).collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let b = batches(&[entry("arn:x", "r1", &refs)]);
        assert_eq!(
            b.iter().map(|b| b.tags.len()).collect::<Vec<_>>(),
            vec![50, 50, 20]
        );
        assert!(b.iter().all(|b| b.arns.len() <= MAX_ARNS_PER_WRITE));
    }

    /// A writer that fails some ARNs, as scripted, and holds what it was told to write.
    #[derive(Default)]
    struct Fake {
        /// arn → statuses of its failures, one per attempt (then success).
        failures: BTreeMap<String, Vec<(i32, &'static str)>>,
        /// ARNs the read-back leaves out.
        hidden: Vec<String>,
        /// ARNs the first N read-backs leave out (eventual consistency).
        lagging: Mutex<BTreeMap<String, u32>>,
        /// ARNs asked for, per read-back.
        reads: Mutex<Vec<Vec<String>>>,
        held: Mutex<LiveTags>,
        calls: Mutex<Vec<(String, Vec<String>, usize)>>,
    }

    #[async_trait]
    impl TagWriter for Fake {
        async fn default_region(&self) -> Result<String, String> {
            Ok("us-east-1".into())
        }
        async fn tag_resources(
            &self,
            _account: &str,
            region: &str,
            arns: &[String],
            tags: &BTreeMap<String, String>,
        ) -> Result<Vec<FailedResource>, String> {
            assert!(arns.len() <= MAX_ARNS_PER_WRITE && tags.len() <= MAX_TAGS_PER_WRITE);
            let mut calls = self.calls.lock().unwrap();
            calls.push((region.into(), arns.to_vec(), tags.len()));
            let mut failed = Vec::new();
            for arn in arns {
                let tried = calls.iter().filter(|c| c.1.contains(arn)).count();
                match self.failures.get(arn).and_then(|f| f.get(tried - 1)) {
                    Some((status, code)) => failed.push(FailedResource {
                        arn: arn.clone(),
                        status_code: *status,
                        error_code: code.to_string(),
                        message: format!("{code} on try {tried}"),
                    }),
                    None => {
                        let mut held = self.held.lock().unwrap();
                        let h = held.entry(arn.clone()).or_default();
                        h.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                }
            }
            Ok(failed)
        }
        async fn read_tags(
            &self,
            _account: &str,
            _region: &str,
            arns: &[String],
        ) -> Result<LiveTags, String> {
            assert!(arns.len() <= MAX_ARNS_PER_READ);
            self.reads.lock().unwrap().push(arns.to_vec());
            let mut lagging = self.lagging.lock().unwrap();
            let held = self.held.lock().unwrap();
            Ok(arns
                .iter()
                .filter(|a| !self.hidden.contains(a))
                .filter(|a| match lagging.get_mut(*a) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        false
                    }
                    _ => true,
                })
                .filter_map(|a| held.get(a).map(|t| (a.clone(), t.clone())))
                .collect())
        }
        fn requests(&self) -> u64 {
            0
        }
    }

    #[tokio::test]
    async fn server_errors_are_retried_others_reported_and_writes_verified() {
        let fake = Fake {
            failures: BTreeMap::from([
                // Fails twice with 500, then succeeds.
                (
                    "arn:a".to_string(),
                    vec![(500, "InternalServiceException"); 2],
                ),
                // moto's "not yet supported": 404, never retried.
                ("arn:b".to_string(), vec![(404, "InternalServiceException")]),
                // A tag policy's refusal: 400, never retried.
                (
                    "arn:c".to_string(),
                    vec![(400, "InvalidParameterException")],
                ),
                // Fails with 503 every time: given up after the last round.
                (
                    "arn:d".to_string(),
                    vec![(503, "InternalServiceException"); 9],
                ),
            ]),
            hidden: vec!["arn:f".to_string()],
            ..Fake::default()
        };
        let entries: Vec<Entry> = ["arn:a", "arn:b", "arn:c", "arn:d", "arn:e", "arn:f"]
            .iter()
            .map(|a| entry(a, "r1", &[("Owner", "x")]))
            .collect();
        let out = execute(&fake, &entries, Duration::ZERO).await;
        assert_eq!(out["arn:a"], Outcome::Promoted);
        assert_eq!(out["arn:e"], Outcome::Promoted);
        assert_eq!(
            out["arn:b"],
            Outcome::Failed {
                error_code: "InternalServiceException".into(),
                status_code: 404,
                message: "InternalServiceException on try 1".into(),
                attempts: 1,
            }
        );
        assert!(matches!(
            &out["arn:c"],
            Outcome::Failed {
                status_code: 400,
                attempts: 1,
                ..
            }
        ));
        assert!(matches!(
            &out["arn:d"],
            Outcome::Failed {
                status_code: 503,
                attempts: 4,
                ..
            }
        ));
        assert_eq!(
            out["arn:f"],
            Outcome::Unverified {
                missing: vec!["Owner".into()],
                message: "AWS accepted the write but GetResources does not show these tags \
                          with the planned values"
                    .into(),
            }
        );
        // First round: one call for all six; then a, d; then a, d; then d.
        let calls = fake.calls.lock().unwrap();
        let sizes: Vec<usize> = calls.iter().map(|c| c.1.len()).collect();
        assert_eq!(sizes, vec![6, 2, 2, 1]);
    }

    #[tokio::test]
    async fn a_write_that_shows_late_is_read_again_before_it_is_called_unverified() {
        let fake = Fake {
            lagging: Mutex::new(BTreeMap::from([("arn:late".to_string(), 2)])),
            hidden: vec!["arn:never".to_string()],
            ..Fake::default()
        };
        let entries: Vec<Entry> = ["arn:late", "arn:now", "arn:never"]
            .iter()
            .map(|a| entry(a, "r1", &[("Owner", "x")]))
            .collect();
        let out = execute(&fake, &entries, Duration::ZERO).await;
        assert_eq!(out["arn:now"], Outcome::Promoted);
        assert_eq!(out["arn:late"], Outcome::Promoted);
        assert!(matches!(out["arn:never"], Outcome::Unverified { .. }));
        // All three, then the two still missing a tag twice, then only the one never shown.
        let reads = fake.reads.lock().unwrap();
        let sizes: Vec<usize> = reads.iter().map(|r| r.len()).collect();
        assert_eq!(sizes, vec![3, 2, 2, 1]);
    }
}
