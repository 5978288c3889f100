//! Building the tag suggester for an estate, shared by suggest_tags, the violation export and
//! the compliance report: users' decisions (feedback) and the virtual-tagging rules are read
//! from the store, and the statistics — a few hundred ms per 100k resources — are kept between
//! calls under a key of everything they depend on (inventory, policy, virtual tags, feedback,
//! configuration).

use crate::app::{Call, Estate, ToolError};
use crate::rules::{CompiledRules, RuleSpec};
use crate::service::virtual_tags::effective_now;
use crate::suggest::{Reliability, SuggestConfig, Suggester};

/// What suggestions learn from besides the estate itself.
pub(crate) struct SuggestionInputs {
    /// Users' decisions on suggested tags: evidence source → (approved, denied).
    pub feedback: Reliability,
    /// The virtual-tagging rules, as evidence (`rule`); None when there are none or they no
    /// longer compile (manage_tag_rules reports them).
    rules: Option<CompiledRules>,
}

impl SuggestionInputs {
    /// Reads feedback and rules from the virtual-tag store (none without a store).
    pub(crate) async fn read(call: &Call<'_>) -> Result<SuggestionInputs, ToolError> {
        let Some(store) = call.virtual_tags() else {
            return Ok(SuggestionInputs {
                feedback: Reliability::new(),
                rules: None,
            });
        };
        let feedback = store.feedback().await?;
        let specs: Vec<(i64, RuleSpec)> = store
            .rules()
            .await?
            .iter()
            .filter_map(|r| serde_json::from_str(&r.spec).ok().map(|s| (r.id, s)))
            .collect();
        let rules = CompiledRules::compile(&specs)
            .ok()
            .filter(|c| !c.is_empty());
        Ok(SuggestionInputs { feedback, rules })
    }

    /// The suggester for `estate`, from statistics kept by an earlier call when they were
    /// built for the same data, feedback and configuration. Not `Send` (it holds closures):
    /// build and use it between awaits.
    pub(crate) fn suggester<'a>(&'a self, call: &Call<'_>, estate: &'a Estate) -> Suggester<'a> {
        let policy = estate.policy();
        let resources = &estate.inventory.resources;
        let config = SuggestConfig::default();
        let key = format!(
            "{}|{}|{}|{:?}|{:?}",
            estate.inventory_version,
            policy.hash(),
            estate.evaluated.overlay.generation,
            self.feedback,
            config
        );
        let mut suggester = match call.suggest_stats().get(&key) {
            Some(stats) => Suggester::from_stats(policy, resources, stats),
            None => {
                let effective = |i: usize| effective_now(estate, i);
                let built = Suggester::new(policy, resources, &effective, &self.feedback, config);
                call.suggest_stats().put(key, built.stats());
                built
            }
        };
        if let Some(rules) = &self.rules {
            suggester = suggester.with_rule_values(Box::new(move |i, key| {
                let tags = effective_now(estate, i);
                rules
                    .first_match(&estate.inventory.resources[i], &tags)
                    .and_then(|m| m.tags.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
            }));
        }
        suggester
    }
}
