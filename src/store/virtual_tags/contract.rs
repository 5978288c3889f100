//! The virtual-tag store's behaviour, written once against the `VirtualTagStore` trait and run
//! against both backends (`run_contract!` in the SQLite tests and in
//! `store::postgres::virtual_tags::tests`): adding, superseding and reviewing tags, the
//! generation counter, review feedback, rules and promotion plans. `Blocking` runs the async
//! trait from synchronous test bodies with the SQLite store's own signatures, so the bodies are
//! the SQLite tests' as they were.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::promotion::{MAX_UNAPPROVED_PLANS, NewPlan, PlanRow, PlanStatus};
use super::*;
use crate::store::{NewRule, RuleUpdate, VirtualTagStore};

/// A store behind the async trait, driven from a test's own runtime.
pub(crate) struct Blocking {
    rt: tokio::runtime::Runtime,
    s: Arc<dyn VirtualTagStore>,
}

impl Blocking {
    pub(crate) fn new(rt: tokio::runtime::Runtime, s: Arc<dyn VirtualTagStore>) -> Blocking {
        Blocking { rt, s }
    }

    fn on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    pub(crate) fn generation(&self) -> Result<u64, StoreError> {
        self.on(self.s.generation())
    }

    pub(crate) fn active(&self) -> Result<Vec<ActiveTag>, StoreError> {
        self.on(self.s.active())
    }

    pub(crate) fn add(&self, tags: &[NewVirtualTag]) -> Result<(Vec<i64>, usize), StoreError> {
        self.on(self.s.add(tags.to_vec()))
    }

    pub(crate) fn list(
        &self,
        q: &TagQuery,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<VirtualTag>, usize), StoreError> {
        self.on(self.s.list(q.clone(), limit, offset))
    }

    pub(crate) fn get(&self, ids: &[i64]) -> Result<Vec<VirtualTag>, StoreError> {
        self.on(self.s.get(ids.to_vec()))
    }

    pub(crate) fn decide(&self, ids: &[i64], d: &Decision) -> Result<Decided, StoreError> {
        self.on(self.s.decide(ids.to_vec(), d.clone()))
    }

    pub(crate) fn decide_matching(
        &self,
        q: &TagQuery,
        d: &Decision,
        max: usize,
    ) -> Result<Vec<VirtualTag>, StoreError> {
        self.on(self.s.decide_matching(q.clone(), d.clone(), max))
    }

    pub(crate) fn feedback(&self) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
        self.on(self.s.feedback())
    }

    pub(crate) fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        self.on(self.s.rules())
    }

    pub(crate) fn create_rule(
        &self,
        name: &str,
        priority: i64,
        enabled: bool,
        trusted: bool,
        spec: &str,
        by: Author<'_>,
    ) -> Result<RuleRow, StoreError> {
        self.on(self.s.create_rule(NewRule {
            name: name.into(),
            priority,
            enabled,
            trusted,
            spec: spec.into(),
            by_name: by.name.into(),
            by_principal: by.principal.into(),
        }))
    }

    pub(crate) fn update_rule(
        &self,
        id: i64,
        name: Option<&str>,
        priority: Option<i64>,
        enabled: Option<bool>,
        trusted: Option<bool>,
        spec: Option<&str>,
    ) -> Result<RuleRow, StoreError> {
        self.on(self.s.update_rule(
            id,
            RuleUpdate {
                name: name.map(str::to_string),
                priority,
                enabled,
                trusted,
                spec: spec.map(str::to_string),
            },
        ))
    }

    pub(crate) fn delete_rule(&self, id: i64) -> Result<RuleRow, StoreError> {
        self.on(self.s.delete_rule(id))
    }

    pub(crate) fn record_rule_run(&self, counts: &[(i64, u64)]) -> Result<(), StoreError> {
        self.on(self.s.record_rule_run(counts.to_vec()))
    }

    /// Every row of one resource, oldest first (through `list`).
    pub(crate) fn history(&self, resource_id: &str) -> Result<Vec<VirtualTag>, StoreError> {
        let q = TagQuery {
            resource_ids: vec![resource_id.to_string()],
            ..TagQuery::default()
        };
        let (mut rows, _) = self.list(&q, usize::MAX / 2, 0)?;
        rows.reverse();
        Ok(rows)
    }

    pub(crate) fn create_plan(&self, p: &NewPlan) -> Result<i64, StoreError> {
        self.on(self.s.create_plan(p.clone()))
    }

    pub(crate) fn plan(&self, id: i64) -> Result<Option<PlanRow>, StoreError> {
        self.on(self.s.plan(id))
    }

    pub(crate) fn list_plans(
        &self,
        limit: usize,
    ) -> Result<(Vec<(PlanRow, usize)>, usize), StoreError> {
        self.on(self.s.list_plans(limit))
    }

    pub(crate) fn approve_plan(
        &self,
        id: i64,
        by: Author<'_>,
        reason: &str,
    ) -> Result<PlanRow, StoreError> {
        self.on(self
            .s
            .approve_plan(id, by.name.into(), by.principal.into(), reason.into()))
    }

    pub(crate) fn start_apply(&self, id: i64) -> Result<(), StoreError> {
        self.on(self.s.start_apply(id))
    }

    pub(crate) fn abandon_apply(&self, id: i64) -> Result<(), StoreError> {
        self.on(self.s.abandon_apply(id))
    }

    pub(crate) fn finish_apply(
        &self,
        id: i64,
        outcomes: &[(String, String)],
        promoted: &[i64],
        principal: &str,
    ) -> Result<usize, StoreError> {
        self.on(self
            .s
            .finish_apply(id, outcomes.to_vec(), promoted.to_vec(), principal.into()))
    }
}

/// Runs every contract test against the store `$open()` returns: `(guard, Blocking)`, the guard
/// keeping the database (a temporary directory, a test schema) alive.
macro_rules! run_contract {
    ($open:path) => {
        $crate::store::virtual_tags::contract::run_contract!(@each $open;
            add_supersedes_and_history_keeps_both_rows,
            re_applying_the_current_tag_is_a_no_op,
            generation_moves_on_every_change_and_only_then,
            active_is_only_approved_tags,
            list_filters_counts_and_pages,
            decide_touches_only_pending_tags,
            approving_supersedes_the_approved_row_of_the_key,
            decide_matching_refuses_too_broad_a_filter,
            feedback_counts_reviewed_suggestions_per_evidence_source,
            rules_crud_with_conflicts,
            rule_runs_accumulate,
            ten_thousand_tags_in_one_call,
            validation_refuses_and_writes_nothing,
            a_principal_keeps_a_bounded_number_of_unapproved_plans,
            a_plan_is_applied_once_and_only_after_approval,
            finishing_marks_approved_tags_promoted_and_keeps_them,
        );
    };
    (@each $open:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let (_guard, store) = $open();
                $crate::store::virtual_tags::contract::$name(&store);
            }
        )*
    };
}
pub(crate) use run_contract;

fn tag(resource: &str, key: &str, value: &str, status: TagStatus) -> NewVirtualTag {
    NewVirtualTag {
        resource_id: resource.into(),
        key: key.into(),
        value: value.into(),
        source: TagSource::Manual,
        confidence: 1.0,
        status,
        rule_id: None,
        reason: "test".into(),
        override_native: false,
        evidence: vec![],
        created_by: "tester".into(),
        created_by_principal: "token:tester".into(),
    }
}

fn suggestion(resource: &str, key: &str, value: &str, evidence: &[&str]) -> NewVirtualTag {
    NewVirtualTag {
        source: TagSource::Suggestion,
        confidence: 0.7,
        evidence: evidence.iter().map(|e| e.to_string()).collect(),
        ..tag(resource, key, value, TagStatus::Pending)
    }
}

fn by(name: &str) -> Author<'_> {
    Author {
        name,
        principal: "token:t",
    }
}

fn decision(approve: bool) -> Decision {
    Decision {
        approve,
        by: "reviewer".into(),
        by_principal: "token:reviewer".into(),
        reason: "looked right".into(),
    }
}

fn one(store: &Blocking, id: i64) -> VirtualTag {
    store.get(&[id]).unwrap().pop().unwrap()
}

fn statuses(rows: &[VirtualTag]) -> Vec<(i64, TagStatus)> {
    rows.iter().map(|t| (t.id, t.status)).collect()
}

fn count_tags(store: &Blocking) -> usize {
    store.list(&TagQuery::default(), 0, 0).unwrap().1
}

pub(crate) fn add_supersedes_and_history_keeps_both_rows(store: &Blocking) {
    let (first, n) = store
        .add(&[tag("i-1", "CostCenter", "CC-1", TagStatus::Approved)])
        .unwrap();
    assert_eq!(n, 1);
    let (second, n) = store
        .add(&[tag("i-1", "CostCenter", "CC-2", TagStatus::Approved)])
        .unwrap();
    assert_eq!(n, 1);
    let history = store.history("i-1").unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, first[0]);
    assert_eq!(history[0].value, "CC-1");
    assert_eq!(history[0].status, TagStatus::Superseded);
    assert_eq!(history[0].superseded_by, Some(second[0]));
    assert_eq!(history[1].status, TagStatus::Approved);
    assert_eq!(history[1].superseded_by, None);
    assert_eq!(history[1].decided_by, None);
    assert!(
        history[1].created_at.ends_with('Z'),
        "{}",
        history[1].created_at
    );
    let active = store.active().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].value, "CC-2");

    // A pending proposal leaves the approved tag in effect and replaces an older proposal.
    let (p1, _) = store
        .add(&[tag("i-1", "CostCenter", "CC-3", TagStatus::Pending)])
        .unwrap();
    let (p2, _) = store
        .add(&[tag("i-1", "CostCenter", "CC-4", TagStatus::Pending)])
        .unwrap();
    assert_eq!(store.active().unwrap()[0].id, second[0]);
    assert_eq!(one(store, p1[0]).status, TagStatus::Superseded);
    assert_eq!(one(store, p1[0]).superseded_by, Some(p2[0]));
    // A new approved tag retires both the approved row and the proposal.
    let (third, _) = store
        .add(&[tag("i-1", "CostCenter", "CC-5", TagStatus::Approved)])
        .unwrap();
    assert_eq!(one(store, p2[0]).superseded_by, Some(third[0]));
    assert_eq!(one(store, second[0]).superseded_by, Some(third[0]));
    // Other keys and resources are untouched; the same key twice in one call chains.
    let (ids, n) = store
        .add(&[
            tag("i-1", "Owner", "a", TagStatus::Approved),
            tag("i-2", "CostCenter", "x", TagStatus::Approved),
            tag("i-2", "CostCenter", "y", TagStatus::Approved),
        ])
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(one(store, ids[1]).superseded_by, Some(ids[2]));
    let active: Vec<(String, String, String)> = store
        .active()
        .unwrap()
        .into_iter()
        .map(|a| (a.resource_id, a.key, a.value))
        .collect();
    assert_eq!(
        active,
        vec![
            ("i-1".into(), "CostCenter".into(), "CC-5".into()),
            ("i-1".into(), "Owner".into(), "a".into()),
            ("i-2".into(), "CostCenter".into(), "y".into()),
        ]
    );
    assert_eq!(store.history("i-1").unwrap().len(), 6);
}

pub(crate) fn re_applying_the_current_tag_is_a_no_op(store: &Blocking) {
    let (ids, _) = store
        .add(&[tag("i-1", "Env", "prod", TagStatus::Approved)])
        .unwrap();
    let generation = store.generation().unwrap();
    let (again, n) = store
        .add(&[tag("i-1", "Env", "prod", TagStatus::Approved)])
        .unwrap();
    assert_eq!((again, n), (ids.clone(), 0));
    // Re-proposing what is already approved changes nothing either.
    let (again, n) = store
        .add(&[tag("i-1", "Env", "prod", TagStatus::Pending)])
        .unwrap();
    assert_eq!((again, n), (ids.clone(), 0));
    assert_eq!(store.generation().unwrap(), generation);
    assert_eq!(store.history("i-1").unwrap().len(), 1);
    // A repeated proposal keeps its id (a review in progress stays valid).
    let (p, n) = store
        .add(&[tag("i-1", "Env", "dev", TagStatus::Pending)])
        .unwrap();
    assert_eq!(n, 1);
    let (p_again, n) = store
        .add(&[tag("i-1", "Env", "dev", TagStatus::Pending)])
        .unwrap();
    assert_eq!((p_again, n), (p.clone(), 0));
    // A different override_native is a change.
    let mut overriding = tag("i-1", "Env", "prod", TagStatus::Approved);
    overriding.override_native = true;
    let (o, n) = store.add(&[overriding.clone()]).unwrap();
    assert_eq!(n, 1);
    assert_ne!(o, ids);
    // Mixed: one new, one identical — ids in input order, one insert.
    let (mixed, n) = store
        .add(&[overriding, tag("i-9", "Env", "prod", TagStatus::Approved)])
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(mixed[0], o[0]);
    assert!(mixed[1] > o[0]);
}

pub(crate) fn generation_moves_on_every_change_and_only_then(store: &Blocking) {
    let g = |store: &Blocking| store.generation().unwrap();
    assert_eq!(g(store), 0);
    store.add(&[]).unwrap();
    assert_eq!(g(store), 0);
    let (ids, _) = store
        .add(&[
            tag("i-1", "A", "1", TagStatus::Pending),
            tag("i-2", "A", "1", TagStatus::Pending),
        ])
        .unwrap();
    assert_eq!(g(store), 1, "one bump per call, not per tag");
    store
        .add(&[tag("i-1", "A", "1", TagStatus::Pending)])
        .unwrap();
    assert_eq!(g(store), 1);
    store.decide(&[ids[0]], &decision(true)).unwrap();
    assert_eq!(g(store), 2);
    // Nothing pending among the ids: nothing changes.
    store.decide(&[ids[0]], &decision(false)).unwrap();
    assert_eq!(g(store), 2);
    store
        .decide_matching(&TagQuery::default(), &decision(false), 10)
        .unwrap();
    assert_eq!(g(store), 3);
    store
        .decide_matching(&TagQuery::default(), &decision(false), 10)
        .unwrap();
    assert_eq!(g(store), 3);
    let rule = store
        .create_rule("r", 1, true, false, "{}", by("tester"))
        .unwrap();
    assert_eq!(g(store), 4);
    store
        .update_rule(rule.id, Some("r"), Some(1), None, None, None)
        .unwrap();
    assert_eq!(g(store), 4, "an update that changes nothing");
    store
        .update_rule(rule.id, None, None, Some(false), None, None)
        .unwrap();
    assert_eq!(g(store), 5);
    store.record_rule_run(&[(rule.id, 3)]).unwrap();
    assert_eq!(g(store), 5, "run statistics are not a change");
    store.delete_rule(rule.id).unwrap();
    assert_eq!(g(store), 6);
    // Failures change nothing.
    assert!(store.delete_rule(rule.id).is_err());
    assert!(store.decide(&[999], &decision(true)).is_err());
    assert_eq!(g(store), 6);
}

pub(crate) fn active_is_only_approved_tags(store: &Blocking) {
    let (ids, _) = store
        .add(&[
            tag("i-2", "B", "approved", TagStatus::Approved),
            tag("i-1", "A", "pending", TagStatus::Pending),
            tag("i-1", "B", "to-deny", TagStatus::Pending),
            tag("i-1", "C", "old", TagStatus::Approved),
            tag("i-1", "C", "new", TagStatus::Approved),
            tag("i-1", "A", "approved", TagStatus::Approved),
        ])
        .unwrap();
    store.decide(&[ids[2]], &decision(false)).unwrap();
    let active = store.active().unwrap();
    let seen: Vec<(i64, &str, &str, &str)> = active
        .iter()
        .map(|a| (a.id, &*a.resource_id, &*a.key, &*a.value))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ids[5], "i-1", "A", "approved"),
            (ids[4], "i-1", "C", "new"),
            (ids[0], "i-2", "B", "approved"),
        ]
    );
    assert!(active.iter().all(|a| !a.override_native));
}

pub(crate) fn list_filters_counts_and_pages(store: &Blocking) {
    let mut tags = Vec::new();
    for i in 0..30 {
        let mut t = tag(
            &format!("i-{}", i % 10),
            if i < 10 {
                "A"
            } else if i < 20 {
                "B"
            } else {
                "C"
            },
            &format!("v{i}"),
            if i % 3 == 0 {
                TagStatus::Approved
            } else {
                TagStatus::Pending
            },
        );
        t.confidence = f64::from(i) / 30.0;
        if i % 2 == 0 {
            t.source = TagSource::Rule;
            t.rule_id = Some(7);
        }
        tags.push(t);
    }
    let (ids, n) = store.add(&tags).unwrap();
    assert_eq!(n, 30);
    let all = |q: &TagQuery| store.list(q, 1000, 0).unwrap();
    let (rows, total) = all(&TagQuery::default());
    assert_eq!(total, 30);
    assert_eq!(rows.len(), 30);
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let q = TagQuery {
        statuses: vec![TagStatus::Approved],
        ..Default::default()
    };
    assert_eq!(all(&q).1, 10);
    let q = TagQuery {
        sources: vec![TagSource::Rule],
        rule_id: Some(7),
        keys: vec!["A".into(), "C".into()],
        ..Default::default()
    };
    let (rows, total) = all(&q);
    assert_eq!(total, 10);
    assert!(
        rows.iter()
            .all(|t| t.source == TagSource::Rule && t.key != "B")
    );
    let q = TagQuery {
        resource_ids: vec!["i-1".into(), "i-2".into()],
        statuses: vec![TagStatus::Pending, TagStatus::Approved],
        ..Default::default()
    };
    assert_eq!(all(&q).1, 6);
    let q = TagQuery {
        min_confidence: Some(10.0 / 30.0),
        max_confidence: Some(19.0 / 30.0),
        ..Default::default()
    };
    let (rows, total) = all(&q);
    assert_eq!(total, 10);
    assert_eq!(rows.last().unwrap().id, ids[10]);
    let q = TagQuery {
        rule_id: Some(8),
        ..Default::default()
    };
    assert_eq!(all(&q), (vec![], 0));
    // Paging: exact totals on every page, pages in order without overlap.
    let mut seen = Vec::new();
    for page in 0..4 {
        let (rows, total) = store.list(&TagQuery::default(), 8, page * 8).unwrap();
        assert_eq!(total, 30);
        seen.extend(rows.iter().map(|t| t.id));
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
    let (rows, total) = store.list(&TagQuery::default(), 8, 100).unwrap();
    assert!(rows.is_empty());
    assert_eq!(total, 30);
    // Many resource ids in one filter (one JSON parameter, no variable limit).
    let many: Vec<String> = (0..40_000).map(|i| format!("i-{i}")).collect();
    let q = TagQuery {
        resource_ids: many,
        ..Default::default()
    };
    assert_eq!(all(&q).1, 30);
    // get: order asked, each once, unknown ids left out.
    let got = store.get(&[ids[3], 999, ids[1], ids[3]]).unwrap();
    assert_eq!(
        got.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[3], ids[1]]
    );
    assert_eq!(got[0].source, TagSource::Manual);
    assert_eq!(got[0].confidence, 0.1);
}

pub(crate) fn decide_touches_only_pending_tags(store: &Blocking) {
    let (ids, _) = store
        .add(&[
            tag("i-1", "A", "1", TagStatus::Pending),
            tag("i-1", "B", "1", TagStatus::Approved),
            tag("i-1", "C", "1", TagStatus::Pending),
            tag("i-1", "D", "1", TagStatus::Pending),
        ])
        .unwrap();
    store.decide(&[ids[3]], &decision(false)).unwrap();
    let (decided, skipped) = store
        .decide(&[ids[0], ids[1], ids[3], ids[0], ids[2]], &decision(true))
        .unwrap();
    assert_eq!(
        statuses(&decided),
        vec![(ids[0], TagStatus::Approved), (ids[2], TagStatus::Approved)]
    );
    assert_eq!(decided, store.get(&[ids[0], ids[2]]).unwrap());
    assert_eq!(decided[0].decided_by.as_deref(), Some("reviewer"));
    assert_eq!(
        decided[0].decided_by_principal.as_deref(),
        Some("token:reviewer")
    );
    assert_eq!(
        decided[0].created_by_principal.as_deref(),
        Some("token:tester")
    );
    assert_eq!(decided[0].decision_reason.as_deref(), Some("looked right"));
    assert!(decided[0].decided_at.is_some());
    assert_eq!(
        skipped,
        vec![(ids[1], TagStatus::Approved), (ids[3], TagStatus::Denied)]
    );
    // The denied one keeps its decision; the approved-on-add one has none.
    let denied = one(store, ids[3]);
    assert_eq!(denied.status, TagStatus::Denied);
    assert_eq!(denied.decided_by.as_deref(), Some("reviewer"));
    assert_eq!(one(store, ids[1]).decided_by, None);
    assert_eq!(one(store, ids[1]).decided_by_principal, None);
    // An unknown id fails the whole call.
    let (more, _) = store
        .add(&[tag("i-2", "A", "1", TagStatus::Pending)])
        .unwrap();
    let err = store
        .decide(&[more[0], 4242], &decision(true))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no virtual tag with id 4242"), "{err}");
    assert_eq!(one(store, more[0]).status, TagStatus::Pending);
}

pub(crate) fn approving_supersedes_the_approved_row_of_the_key(store: &Blocking) {
    let (old, _) = store
        .add(&[tag("i-1", "Owner", "alice", TagStatus::Approved)])
        .unwrap();
    let (new, _) = store
        .add(&[tag("i-1", "Owner", "bob", TagStatus::Pending)])
        .unwrap();
    assert_eq!(store.active().unwrap()[0].value, "alice");
    store.decide(&new, &decision(true)).unwrap();
    let old = one(store, old[0]);
    assert_eq!(old.status, TagStatus::Superseded);
    assert_eq!(old.superseded_by, Some(new[0]));
    let active = store.active().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].id, active[0].value.as_str()), (new[0], "bob"));
    // Denying a proposal leaves the approved tag in effect.
    let (p, _) = store
        .add(&[tag("i-1", "Owner", "carol", TagStatus::Pending)])
        .unwrap();
    store.decide(&p, &decision(false)).unwrap();
    assert_eq!(store.active().unwrap()[0].value, "bob");
}

pub(crate) fn decide_matching_refuses_too_broad_a_filter(store: &Blocking) {
    let tags: Vec<NewVirtualTag> = (0..5)
        .map(|i| tag(&format!("i-{i}"), "Team", "web", TagStatus::Pending))
        .chain([tag("i-0", "Env", "prod", TagStatus::Pending)])
        .collect();
    let (ids, _) = store.add(&tags).unwrap();
    let generation = store.generation().unwrap();
    let team = TagQuery {
        keys: vec!["Team".into()],
        // Ignored: decide_matching only ever decides pending tags.
        statuses: vec![TagStatus::Approved],
        ..Default::default()
    };
    let err = store
        .decide_matching(&team, &decision(true), 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("5 pending tags match"), "{err}");
    assert!(err.contains("narrow the filter"), "{err}");
    assert_eq!(store.generation().unwrap(), generation);
    assert_eq!(
        store
            .list(
                &TagQuery {
                    statuses: vec![TagStatus::Pending],
                    ..Default::default()
                },
                100,
                0
            )
            .unwrap()
            .1,
        6
    );
    let decided = store.decide_matching(&team, &decision(true), 5).unwrap();
    assert_eq!(
        decided.iter().map(|t| t.id).collect::<Vec<_>>(),
        ids[..5].to_vec()
    );
    assert!(decided.iter().all(|t| t.status == TagStatus::Approved));
    assert_eq!(one(store, ids[5]).status, TagStatus::Pending);
    // Nothing left to match: an empty answer, not an error.
    assert!(
        store
            .decide_matching(&team, &decision(true), 0)
            .unwrap()
            .is_empty()
    );
}

pub(crate) fn feedback_counts_reviewed_suggestions_per_evidence_source(store: &Blocking) {
    let mut from_rule = tag("i-9", "Team", "x", TagStatus::Pending);
    from_rule.source = TagSource::Rule;
    from_rule.evidence = vec!["name_token".into()];
    let (ids, _) = store
        .add(&[
            suggestion("i-1", "Team", "web", &["name_token", "similar_stack"]),
            suggestion("i-2", "Team", "web", &["name_token", "name_token"]),
            suggestion("i-3", "Team", "db", &["similar_stack"]),
            suggestion("i-4", "Team", "db", &[]),
            from_rule,
        ])
        .unwrap();
    store
        .decide(&[ids[0], ids[1], ids[3], ids[4]], &decision(true))
        .unwrap();
    store.decide(&[ids[2]], &decision(false)).unwrap();
    // Re-deciding (skipped) counts nothing.
    store.decide(&[ids[0]], &decision(true)).unwrap();
    let feedback = store.feedback().unwrap();
    assert_eq!(
        feedback,
        BTreeMap::from([
            ("name_token".to_string(), (2, 0)),
            ("similar_stack".to_string(), (1, 1)),
        ])
    );
}

pub(crate) fn rules_crud_with_conflicts(store: &Blocking) {
    let a = store
        .create_rule("web-team", 10, true, false, r#"{"when":1}"#, by("alice"))
        .unwrap();
    assert_eq!(a.name, "web-team");
    assert_eq!((a.priority, a.enabled, a.trusted), (10, true, false));
    assert_eq!(a.spec, r#"{"when":1}"#);
    assert_eq!(a.created_by, "alice");
    assert_eq!(a.created_by_principal.as_deref(), Some("token:t"));
    assert_eq!(a.created_at, a.updated_at);
    assert_eq!((a.matches, a.last_run_at.clone()), (0, None));
    let b = store
        .create_rule("db-team", 5, false, true, "{}", by("alice"))
        .unwrap();
    assert_eq!(
        store
            .rules()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![b.id, a.id]
    );
    let err = store
        .create_rule("web-team", 99, true, false, "{}", by("bob"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"a rule named "web-team" already exists"#),
        "{err}"
    );
    let err = store
        .create_rule("other", 10, true, false, "{}", by("bob"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"priority 10 is taken by rule "web-team""#),
        "{err}"
    );
    assert!(
        store
            .create_rule(" ", 11, true, false, "{}", by("bob"))
            .is_err()
    );
    // Updates: conflicts with others are refused, keeping its own name/priority is fine.
    let err = store
        .update_rule(b.id, Some("web-team"), None, None, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = store
        .update_rule(b.id, None, Some(10), None, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("priority 10 is taken"), "{err}");
    let updated = store
        .update_rule(
            b.id,
            Some("db-team"),
            Some(20),
            Some(true),
            None,
            Some(r#"{"v":2}"#),
        )
        .unwrap();
    assert_eq!(updated.priority, 20);
    assert!(updated.enabled && updated.trusted);
    assert_eq!(updated.spec, r#"{"v":2}"#);
    assert_eq!(updated.created_at, b.created_at);
    let err = store
        .update_rule(999, None, None, Some(true), None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no rule with id 999"), "{err}");
    // Deleting frees the name and priority; the row stays (tags may refer to it).
    let deleted = store.delete_rule(a.id).unwrap();
    assert_eq!(deleted.name, "web-team");
    assert_eq!(
        store
            .rules()
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![b.id]
    );
    let again = store
        .create_rule("web-team", 10, true, false, "{}", by("bob"))
        .unwrap();
    assert_ne!(again.id, a.id);
    let err = store.delete_rule(a.id).unwrap_err().to_string();
    assert!(err.contains("was deleted"), "{err}");
    let err = store
        .update_rule(a.id, None, None, Some(false), None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("was deleted"), "{err}");
    assert!(store.delete_rule(999).is_err());
}

pub(crate) fn rule_runs_accumulate(store: &Blocking) {
    let a = store
        .create_rule("a", 1, true, true, "{}", by("t"))
        .unwrap();
    let b = store
        .create_rule("b", 2, true, true, "{}", by("t"))
        .unwrap();
    store.record_rule_run(&[(a.id, 5), (b.id, 0)]).unwrap();
    store.record_rule_run(&[(a.id, 3)]).unwrap();
    let rules = store.rules().unwrap();
    assert_eq!((rules[0].matches, rules[0].last_run_matches), (8, Some(3)));
    assert!(rules[0].last_run_at.is_some());
    assert_eq!((rules[1].matches, rules[1].last_run_matches), (0, Some(0)));
    // An unknown rule fails the whole record.
    assert!(
        store
            .record_rule_run(&[(a.id, 1), (999, 1)])
            .unwrap_err()
            .to_string()
            .contains("no rule with id 999")
    );
    assert_eq!(store.rules().unwrap()[0].matches, 8);
    store.record_rule_run(&[]).unwrap();
}

pub(crate) fn ten_thousand_tags_in_one_call(store: &Blocking) {
    let tags: Vec<NewVirtualTag> = (0..10_000)
        .map(|i| {
            let mut t = suggestion(
                &format!("arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:08}"),
                "CostCenter",
                &format!("CC-{}", i % 37),
                &["name_token", "similar_stack"],
            );
            if i % 2 == 0 {
                t.status = TagStatus::Approved;
            }
            t
        })
        .collect();
    let started = std::time::Instant::now();
    let (ids, n) = store.add(&tags).unwrap();
    eprintln!("add 10,000 new tags: {:?}", started.elapsed());
    assert_eq!(n, 10_000);
    assert_eq!(ids.len(), 10_000);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    // All replaced by new values: 10,000 supersedes and inserts.
    let changed: Vec<NewVirtualTag> = tags
        .iter()
        .map(|t| NewVirtualTag {
            value: format!("{}-b", t.value),
            ..t.clone()
        })
        .collect();
    let started = std::time::Instant::now();
    let (new_ids, n) = store.add(&changed).unwrap();
    eprintln!("add 10,000 superseding tags: {:?}", started.elapsed());
    assert_eq!(n, 10_000);
    let started = std::time::Instant::now();
    let (same_ids, n) = store.add(&changed).unwrap();
    eprintln!("re-apply 10,000 identical tags: {:?}", started.elapsed());
    assert_eq!((same_ids, n), (new_ids.clone(), 0));
    assert_eq!(store.active().unwrap().len(), 5_000);
    assert_eq!(store.list(&TagQuery::default(), 10, 0).unwrap().1, 20_000);
    let pending = TagQuery {
        statuses: vec![TagStatus::Pending],
        ..Default::default()
    };
    assert_eq!(store.list(&pending, 10, 0).unwrap().1, 5_000);
    let started = std::time::Instant::now();
    let decided = store
        .decide_matching(&pending, &decision(true), 10_000)
        .unwrap();
    eprintln!("approve 5,000 pending tags: {:?}", started.elapsed());
    assert_eq!(decided.len(), 5_000);
    assert_eq!(store.active().unwrap().len(), 10_000);
    assert_eq!(store.feedback().unwrap()["similar_stack"], (5_000, 0));
    assert_eq!(store.generation().unwrap(), 3);
}

/// The store's own checks refuse a bad batch, naming the tag, and write nothing.
pub(crate) fn validation_refuses_and_writes_nothing(store: &Blocking) {
    let (before, _) = store
        .add(&[tag("i-1", "A", "old", TagStatus::Approved)])
        .unwrap();
    let generation = store.generation().unwrap();
    let batch = [
        tag("i-1", "A", "new", TagStatus::Approved),
        tag("i-2", "A", "x", TagStatus::Pending),
        tag("i-3", "A", "x", TagStatus::Denied),
    ];
    let err = store.add(&batch).unwrap_err().to_string();
    assert!(err.contains("virtual tag 2 (i-3"), "{err}");
    assert!(err.contains("pending or approved"), "{err}");
    let mut bad = tag("i-4", "A", "x", TagStatus::Pending);
    bad.confidence = 1.5;
    assert!(
        store
            .add(&[bad])
            .unwrap_err()
            .to_string()
            .contains("confidence")
    );
    assert!(store.add(&[tag("", "A", "x", TagStatus::Pending)]).is_err());
    assert_eq!(count_tags(store), 1);
    assert_eq!(one(store, before[0]).status, TagStatus::Approved);
    assert_eq!(store.generation().unwrap(), generation);
}

fn plan() -> NewPlan {
    NewPlan {
        fingerprint: "f".into(),
        selection: "{}".into(),
        summary: "{}".into(),
        entries: vec![("arn:b".into(), "{\"x\":1}".into())],
        by_name: "cli".into(),
        by_principal: "local".into(),
    }
}

const ALICE: Author<'static> = Author {
    name: "alice",
    principal: "token:abc",
};

pub(crate) fn a_principal_keeps_a_bounded_number_of_unapproved_plans(store: &Blocking) {
    let first = store.create_plan(&plan()).unwrap();
    store.approve_plan(first, ALICE, "ok").unwrap();
    let other = store
        .create_plan(&NewPlan {
            by_principal: "token:other".into(),
            ..plan()
        })
        .unwrap();
    let ids: Vec<i64> = (0..MAX_UNAPPROVED_PLANS + 5)
        .map(|_| store.create_plan(&plan()).unwrap())
        .collect();
    // The approved plan and the other principal's are kept; of `local`'s unapproved plans only
    // the newest MAX_UNAPPROVED_PLANS remain, entries and all.
    assert!(store.plan(first).unwrap().is_some());
    assert!(store.plan(other).unwrap().is_some());
    for (n, id) in ids.iter().enumerate() {
        let kept = n as i64 >= 5;
        assert_eq!(store.plan(*id).unwrap().is_some(), kept, "plan {id}");
    }
    let (listed, total) = store.list_plans(1000).unwrap();
    assert_eq!(total as i64, MAX_UNAPPROVED_PLANS + 2);
    let entries: usize = listed.iter().map(|(_, n)| n).sum();
    assert_eq!(entries as i64, MAX_UNAPPROVED_PLANS + 2);
}

pub(crate) fn a_plan_is_applied_once_and_only_after_approval(store: &Blocking) {
    let generation = store.generation().unwrap();
    let id = store.create_plan(&plan()).unwrap();
    let err = store.start_apply(id).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "promotion plan {id} cannot be applied: it is not approved yet: a person \
             approves it first (action `approve` with the plan id and a reason)"
        )
    );
    let approved = store.approve_plan(id, ALICE, "checked").unwrap();
    assert_eq!(approved.status, PlanStatus::Approved);
    assert_eq!(approved.approved_by.as_deref(), Some("alice"));
    assert_eq!(approved.approved_by_principal.as_deref(), Some("token:abc"));
    assert_eq!(approved.approval_reason.as_deref(), Some("checked"));
    assert_eq!(
        approved.entries,
        vec![("arn:b".to_string(), "{\"x\":1}".to_string(), None)]
    );
    assert!(
        store
            .approve_plan(id, ALICE, "again")
            .unwrap_err()
            .to_string()
            .ends_with("it is already approved")
    );
    store.start_apply(id).unwrap();
    assert!(
        store
            .start_apply(id)
            .unwrap_err()
            .to_string()
            .contains("being applied")
    );
    store.abandon_apply(id).unwrap();
    store.start_apply(id).unwrap();
    store
        .finish_apply(id, &[("arn:b".into(), "\"ok\"".into())], &[], "local")
        .unwrap();
    let done = store.plan(id).unwrap().unwrap();
    assert_eq!(done.status, PlanStatus::Applied);
    assert_eq!(done.applied_by_principal.as_deref(), Some("local"));
    assert_eq!(done.entries[0].2.as_deref(), Some("\"ok\""));
    assert!(
        store
            .start_apply(id)
            .unwrap_err()
            .to_string()
            .ends_with("it was already applied; make a new plan")
    );
    assert!(
        store
            .approve_plan(99, ALICE, "x")
            .unwrap_err()
            .to_string()
            .starts_with("no promotion plan 99")
    );
    assert!(store.plan(99).unwrap().is_none());
    let second = store.create_plan(&plan()).unwrap();
    let (listed, total) = store.list_plans(1).unwrap();
    assert_eq!(total, 2);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].0.id, listed[0].0.status, listed[0].1),
        (second, PlanStatus::Planned, 1)
    );
    assert!(listed[0].0.entries.is_empty());
    // Plans are not tags: the overlay's generation stays.
    assert_eq!(store.generation().unwrap(), generation);
}

pub(crate) fn finishing_marks_approved_tags_promoted_and_keeps_them(store: &Blocking) {
    let (ids, _) = store
        .add(&[
            tag("arn:a", "Owner", "x", TagStatus::Approved),
            tag("arn:a", "CostCenter", "CC-1", TagStatus::Approved),
        ])
        .unwrap();
    let generation = store.generation().unwrap();
    let id = store.create_plan(&plan()).unwrap();
    store.approve_plan(id, ALICE, "ok").unwrap();
    store.start_apply(id).unwrap();
    // The second id twice: marked once.
    let marked = store
        .finish_apply(id, &[], &[ids[1], ids[1]], "local")
        .unwrap();
    assert_eq!(marked, 1);
    assert!(store.generation().unwrap() > generation);
    let active: Vec<i64> = store.active().unwrap().iter().map(|t| t.id).collect();
    assert_eq!(active, vec![ids[0]]);
    let q = TagQuery {
        statuses: vec![TagStatus::Promoted],
        ..TagQuery::default()
    };
    let (promoted, total) = store.list(&q, 10, 0).unwrap();
    assert_eq!(total, 1);
    assert_eq!(promoted[0].id, ids[1]);
    assert_eq!(promoted[0].status, TagStatus::Promoted);
    // A promoted tag is history: the same tag can be approved again later.
    let (again, written) = store
        .add(&[tag("arn:a", "CostCenter", "CC-1", TagStatus::Approved)])
        .unwrap();
    assert_eq!(written, 1);
    assert_ne!(again[0], ids[1]);
}
