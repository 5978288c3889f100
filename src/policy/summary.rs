//! A plain-language summary of a policy, for people and assistants reading `get_tagging_policy`.

use super::compiled::{Policy, ValueCheck};
use super::model::KeyMatching;

impl Policy {
    /// One sentence per rule, in file order, then the cross-cutting settings.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for rule in &self.required {
            let scope = if rule.applies_to.matches_all_types() {
                "Every resource".to_string()
            } else {
                let types: Vec<&str> = rule.applies_to.patterns().collect();
                format!("Resources of type {}", types.join(", "))
            };
            let when = rule
                .when
                .as_ref()
                .map(|w| format!(" when {}", w.describe()))
                .unwrap_or_default();
            lines.push(format!(
                "{scope} must carry `{}`{when}{} [{}].",
                self.key_name(rule.key),
                constraint(&rule.check),
                rule.severity
            ));
        }
        for rule in &self.optional {
            if !rule.check.is_unconstrained() {
                lines.push(format!(
                    "Optional `{}`, when present, must be{} [{}].",
                    self.key_name(rule.key),
                    constraint(&rule.check).replacen(" with", "", 1),
                    rule.severity
                ));
            }
        }
        for (key, variants) in &self.file.aliases {
            if !variants.is_empty() {
                lines.push(format!(
                    "`{}` is accepted for `{key}` in the effective view but reported as a misnamed key.",
                    variants.join("`, `")
                ));
            }
        }
        for (key, values) in &self.file.value_aliases {
            for (canonical, variants) in values {
                lines.push(format!(
                    "`{key}` values `{}` count as `{canonical}` in the effective view.",
                    variants.join("`, `")
                ));
            }
        }
        for p in &self.prohibited {
            lines.push(format!(
                "Tag `{}` must not be present [{}].",
                p.name, p.severity
            ));
        }
        if let Some((limit, severity)) = self.max_tags {
            lines.push(format!(
                "At most {limit} user tags per resource (aws: keys not counted) [{severity}]."
            ));
        }
        for c in &self.conflicts {
            lines.push(format!("Conflict: {} [{}].", c.description, c.severity));
        }
        if let Some(scope) = &self.scope {
            let types: Vec<&str> = scope.patterns().collect();
            lines.push(if scope.matches_all_types() {
                "Every resource is judged, also where no required tag applies.".to_string()
            } else {
                format!(
                    "Resources of type {} are judged also where no required tag applies.",
                    types.join(", ")
                )
            });
        }
        lines.push(match self.key_matching {
            KeyMatching::CaseInsensitive => {
                "Keys are matched case-insensitively: a case variant counts in the effective view \
                 and is reported as a misnamed key."
                    .to_string()
            }
            KeyMatching::Exact => "Keys are matched exactly (case-sensitive).".to_string(),
        });
        lines.push(format!(
            "A resource is compliant when it has no violation of severity {} or above; values \
             are case-sensitive.",
            self.fail_at
        ));
        lines
    }
}

fn constraint(check: &ValueCheck) -> String {
    match (&check.allowed, &check.regex_source) {
        (Some(a), Some(r)) => format!(" with one of {} matching `{r}`", a.values().join(", ")),
        (Some(a), None) => format!(" with one of {}", a.values().join(", ")),
        (None, Some(r)) => format!(" with a value matching `{r}`"),
        (None, None) => String::new(),
    }
}
