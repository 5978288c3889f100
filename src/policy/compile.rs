//! Compiling a policy file: checking its meaning (keys, aliases, conditions, regexes) and
//! building the lookup tables evaluation uses. Every refusal names the JSON path and the reason.

use rustc_hash::FxHashMap;

use super::compiled::{
    CompiledCondition, ConditionTest, ConflictRule, KeyId, KeyInfo, KeyRef, OptionalRule, Policy,
    ProhibitedRule, RequiredRule, ValueCheck,
};
use super::loader::PolicyError;
use super::model::{
    Condition, KeyMatching, MaxTags, PolicyFile, ProhibitedTag, RequiredTag, Severity,
};
use super::pattern::TypePatterns;

const DEFAULT_RULE_SEVERITY: Severity = Severity::High;
const DEFAULT_OPTIONAL_SEVERITY: Severity = Severity::Low;

impl Policy {
    pub(crate) fn compile(file: PolicyFile, hash: String) -> Result<Policy, PolicyError> {
        let key_matching = match (file.key_matching, &file.tag_naming_rules) {
            (Some(mode), _) => mode,
            (None, Some(rules)) if rules.case_sensitivity == Some(true) => KeyMatching::Exact,
            _ => KeyMatching::CaseInsensitive,
        };
        let mut b = Builder {
            keys: Vec::new(),
            by_name: FxHashMap::default(),
        };

        let mut required = Vec::with_capacity(file.required_tags.len());
        for (i, rule) in file.required_tags.iter().enumerate() {
            required.push(compile_required(
                &mut b,
                rule,
                &format!("required_tags[{i}]"),
            )?);
        }

        let mut optional: Vec<OptionalRule> = Vec::new();
        for (i, rule) in file.optional_tags.iter().enumerate() {
            let path = format!("optional_tags[{i}]");
            let key = b.key(&rule.name, &format!("{path}.name"))?;
            if optional.iter().any(|o| o.key == key) {
                return Err(PolicyError::invalid(
                    format!("{path}.name"),
                    format!("`{}` is listed twice in optional_tags", rule.name),
                ));
            }
            optional.push(OptionalRule {
                key,
                severity: rule.severity.unwrap_or(DEFAULT_OPTIONAL_SEVERITY),
                check: ValueCheck::compile(
                    rule.allowed_values.as_ref(),
                    rule.validation_regex.as_ref(),
                    &path,
                )?,
                description: rule.description.clone(),
            });
        }

        let mut conflicts = Vec::new();
        for (i, conflict) in file.conflicts.iter().enumerate() {
            let path = format!("conflicts[{i}]");
            if conflict.tags.len() < 2 {
                return Err(PolicyError::invalid(
                    format!("{path}.tags"),
                    "a conflict needs at least two tag conditions that must not hold together",
                ));
            }
            let conditions = conflict
                .tags
                .iter()
                .enumerate()
                .map(|(j, c)| compile_condition(&mut b, c, &format!("{path}.tags[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let description = conflict.description.clone().unwrap_or_else(|| {
                let parts: Vec<String> = conditions.iter().map(|c| c.describe()).collect();
                format!("{} must not hold together", parts.join(" and "))
            });
            conflicts.push(ConflictRule {
                conditions,
                severity: conflict.severity.unwrap_or(DEFAULT_RULE_SEVERITY),
                description,
            });
        }

        // Aliases and value aliases may name keys not otherwise mentioned: they become keys too.
        let mut alias_entries: Vec<(String, KeyId, String)> = Vec::new();
        for (canonical, variants) in &file.aliases {
            let key = b.key(canonical, &format!("aliases.{canonical}"))?;
            for (j, variant) in variants.iter().enumerate() {
                let path = format!("aliases.{canonical}[{j}]");
                if variant.trim().is_empty() {
                    return Err(PolicyError::invalid(path, "an alias cannot be empty"));
                }
                alias_entries.push((variant.clone(), key, path));
            }
        }
        for (canonical, values) in &file.value_aliases {
            let key = b.key(canonical, &format!("value_aliases.{canonical}"))?;
            for (canonical_value, variants) in values {
                for (j, variant) in variants.iter().enumerate() {
                    let path = format!("value_aliases.{canonical}.{canonical_value}[{j}]");
                    let map = &mut b.keys[key as usize].value_aliases;
                    if let Some(previous) = map.get(variant.as_str())
                        && **previous != *canonical_value
                    {
                        return Err(PolicyError::invalid(
                            path,
                            format!(
                                "`{variant}` already stands for `{previous}`; a variant can mean only one value"
                            ),
                        ));
                    }
                    map.insert(variant.as_str().into(), canonical_value.as_str().into());
                }
                check_canonical_value_allowed(
                    &required,
                    &optional,
                    key,
                    canonical,
                    canonical_value,
                )?;
            }
        }

        let mut prohibited = Vec::new();
        for (i, p) in file.prohibited_tags.iter().enumerate() {
            let (name, severity, description) = match p {
                ProhibitedTag::Name(n) => (n.clone(), None, None),
                ProhibitedTag::Rule(r) => (r.name.clone(), r.severity, r.description.clone()),
            };
            if name.trim().is_empty() {
                return Err(PolicyError::invalid(
                    format!("prohibited_tags[{i}]"),
                    "a prohibited tag needs a name",
                ));
            }
            prohibited.push(ProhibitedRule {
                name,
                severity: severity.unwrap_or(DEFAULT_RULE_SEVERITY),
                description,
            });
        }

        let max_tags = match &file.max_tags {
            None => None,
            Some(MaxTags::Limit(0)) | Some(MaxTags::Rule { limit: 0, .. }) => {
                return Err(PolicyError::invalid(
                    "max_tags",
                    "must be at least 1 (omit it for no limit)",
                ));
            }
            Some(MaxTags::Limit(n)) => Some((*n, DEFAULT_RULE_SEVERITY)),
            Some(MaxTags::Rule { limit, severity }) => {
                Some((*limit, severity.unwrap_or(DEFAULT_RULE_SEVERITY)))
            }
        };

        let scope = match &file.scope {
            None => None,
            Some(patterns) => {
                for (j, pattern) in patterns.iter().enumerate() {
                    if pattern.trim().is_empty() {
                        return Err(PolicyError::invalid(
                            format!("scope[{j}]"),
                            "an empty pattern matches nothing; use \"*\" for every type",
                        ));
                    }
                }
                // An empty list would mean "every type" to TypePatterns; here it means none.
                (!patterns.is_empty()).then(|| TypePatterns::new(patterns))
            }
        };

        let fail_at = file.fail_at.unwrap_or(Severity::Low);
        let (max_key_length, max_value_length) = file
            .tag_naming_rules
            .as_ref()
            .map(|r| (r.max_key_length, r.max_value_length))
            .unwrap_or((None, None));

        let mut policy = Policy {
            hash,
            fail_at,
            key_matching,
            keys: b.keys,
            exact: FxHashMap::default(),
            folded: FxHashMap::default(),
            required,
            optional,
            prohibited,
            max_tags,
            conflicts,
            max_key_length,
            max_value_length,
            scope,
            file,
        };
        policy.build_lookup(&alias_entries)?;
        Ok(policy)
    }

    /// Fills the exact and folded key tables, refusing any name that would mean two things.
    fn build_lookup(&mut self, aliases: &[(String, KeyId, String)]) -> Result<(), PolicyError> {
        let fold = self.key_matching == KeyMatching::CaseInsensitive;
        let mut entries: Vec<(String, KeyRef, String)> = Vec::new();
        for (id, key) in self.keys.iter().enumerate() {
            entries.push((
                key.name.clone(),
                KeyRef::Canonical(id as KeyId),
                key.name.clone(),
            ));
        }
        for (variant, key, path) in aliases {
            entries.push((variant.clone(), KeyRef::Alias(*key), path.clone()));
        }
        for (i, p) in self.prohibited.iter().enumerate() {
            entries.push((
                p.name.clone(),
                KeyRef::Prohibited(i as u16),
                format!("prohibited_tags[{i}]"),
            ));
        }
        let mut exact_paths: FxHashMap<String, String> = FxHashMap::default();
        let mut folded_paths: FxHashMap<String, String> = FxHashMap::default();
        for (name, target, path) in entries {
            if let Some(existing) = self.exact.get(name.as_str())
                && !existing.same_meaning(target)
            {
                return Err(PolicyError::invalid(
                    path,
                    format!(
                        "`{name}` is already used by {}; a key can mean only one thing",
                        exact_paths
                            .get(&name)
                            .map(String::as_str)
                            .unwrap_or("another entry")
                    ),
                ));
            }
            exact_paths
                .entry(name.clone())
                .or_insert_with(|| path.clone());
            // The first entry for a name wins: the canonical key before its aliases.
            self.exact.entry(name.as_str().into()).or_insert(target);
            if fold {
                let lower = name.to_lowercase();
                if let Some(existing) = self.folded.get(lower.as_str())
                    && !existing.same_meaning(target)
                {
                    return Err(PolicyError::invalid(
                        path,
                        format!(
                            "`{name}` differs only in case from the key used by {}; with \
                             key_matching case_insensitive a key can mean only one thing",
                            folded_paths
                                .get(&lower)
                                .map(String::as_str)
                                .unwrap_or("another entry")
                        ),
                    ));
                }
                folded_paths.entry(lower.clone()).or_insert(path);
                self.folded.entry(lower.into()).or_insert(target);
            }
        }
        Ok(())
    }
}

struct Builder {
    keys: Vec<KeyInfo>,
    by_name: FxHashMap<String, KeyId>,
}

impl Builder {
    fn key(&mut self, name: &str, path: &str) -> Result<KeyId, PolicyError> {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(PolicyError::invalid(path, "a tag key cannot be empty"));
        }
        if trimmed != name {
            return Err(PolicyError::invalid(
                path,
                format!("tag key `{name}` has leading or trailing spaces"),
            ));
        }
        if name.len() > 128 {
            return Err(PolicyError::invalid(
                path,
                "tag keys are at most 128 characters",
            ));
        }
        if name.starts_with("aws:") {
            return Err(PolicyError::invalid(
                path,
                "keys starting with `aws:` are reserved by AWS and cannot be governed",
            ));
        }
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        if self.keys.len() >= u16::MAX as usize - 1 {
            return Err(PolicyError::invalid(
                path,
                "too many distinct keys in the policy",
            ));
        }
        let id = self.keys.len() as KeyId;
        self.keys.push(KeyInfo {
            name: name.to_string(),
            value_aliases: FxHashMap::default(),
        });
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }
}

fn compile_required(
    b: &mut Builder,
    rule: &RequiredTag,
    path: &str,
) -> Result<RequiredRule, PolicyError> {
    let key = b.key(&rule.name, &format!("{path}.name"))?;
    let applies = rule.applies_to.clone().unwrap_or_default();
    for (j, pattern) in applies.iter().enumerate() {
        if pattern.trim().is_empty() {
            return Err(PolicyError::invalid(
                format!("{path}.applies_to[{j}]"),
                "an empty pattern matches nothing; use \"*\" for every type",
            ));
        }
    }
    let when = rule
        .when
        .as_ref()
        .map(|c| compile_condition(b, c, &format!("{path}.when")))
        .transpose()?;
    Ok(RequiredRule {
        key,
        applies_to: TypePatterns::new(&applies),
        severity: rule.severity.unwrap_or(DEFAULT_RULE_SEVERITY),
        when,
        check: ValueCheck::compile(
            rule.allowed_values.as_ref(),
            rule.validation_regex.as_ref(),
            path,
        )?,
        description: rule.description.clone(),
    })
}

fn compile_condition(
    b: &mut Builder,
    c: &Condition,
    path: &str,
) -> Result<CompiledCondition, PolicyError> {
    let key = b.key(&c.key, &format!("{path}.key"))?;
    let given = [
        c.equals.is_some(),
        c.in_values.is_some(),
        c.exists.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if given != 1 {
        return Err(PolicyError::invalid(
            path,
            "a condition needs exactly one of `equals`, `in` or `exists`",
        ));
    }
    let test = if let Some(v) = &c.equals {
        ConditionTest::Equals(v.as_str().into())
    } else if let Some(vs) = &c.in_values {
        if vs.is_empty() {
            return Err(PolicyError::invalid(
                format!("{path}.in"),
                "`in` needs at least one value",
            ));
        }
        ConditionTest::In(vs.iter().map(|v| v.as_str().into()).collect())
    } else {
        ConditionTest::Exists(c.exists.unwrap_or(true))
    };
    Ok(CompiledCondition {
        key,
        test,
        source: c.clone(),
    })
}

/// A value alias must point at a value the policy accepts, or it would "fix" a value into
/// another violation.
fn check_canonical_value_allowed(
    required: &[RequiredRule],
    optional: &[OptionalRule],
    key: KeyId,
    key_name: &str,
    value: &str,
) -> Result<(), PolicyError> {
    let checks = required
        .iter()
        .filter(|r| r.key == key)
        .map(|r| &r.check)
        .chain(optional.iter().filter(|o| o.key == key).map(|o| &o.check));
    for check in checks {
        if check.check(value).is_some() {
            return Err(PolicyError::invalid(
                format!("value_aliases.{key_name}.{value}"),
                format!("`{value}` is not itself an accepted value of `{key_name}`"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::loader::parse_policy;
    use super::*;

    fn err(json: &str) -> PolicyError {
        parse_policy(json).expect_err("policy should be refused")
    }

    fn path_of(e: &PolicyError) -> &str {
        match e {
            PolicyError::Invalid { path, .. } => path,
            _ => "",
        }
    }

    #[test]
    fn bad_regex_names_its_field() {
        let e =
            err(r#"{"required_tags":[{"name":"A"},{"name":"B","validation_regex":"CC-[0-9"}]}"#);
        assert_eq!(path_of(&e), "required_tags[1].validation_regex");
        assert!(e.to_string().contains("regular expression"));
    }

    #[test]
    fn condition_needs_exactly_one_test() {
        let e = err(
            r#"{"required_tags":[{"name":"A","when":{"key":"B","equals":"x","exists":true}}]}"#,
        );
        assert_eq!(path_of(&e), "required_tags[0].when");
        let e = err(r#"{"required_tags":[{"name":"A","when":{"key":"B"}}]}"#);
        assert_eq!(path_of(&e), "required_tags[0].when");
        let e = err(r#"{"required_tags":[{"name":"A","when":{"key":"B","in":[]}}]}"#);
        assert_eq!(path_of(&e), "required_tags[0].when.in");
    }

    #[test]
    fn alias_cannot_mean_two_keys() {
        let e = err(r#"{"required_tags":[{"name":"Environment"},{"name":"Env"}],
                "aliases":{"Environment":["env"]}}"#);
        assert_eq!(path_of(&e), "aliases.Environment[0]");
        // In exact mode `env` and `Env` are different keys, so that is fine.
        parse_policy(
            r#"{"key_matching":"exact","required_tags":[{"name":"Environment"},{"name":"Env"}],
                "aliases":{"Environment":["env"]}}"#,
        )
        .expect("exact mode keeps case-distinct keys apart");
    }

    #[test]
    fn prohibited_cannot_be_a_governed_key() {
        let e = err(r#"{"required_tags":[{"name":"Owner"}],"prohibited_tags":["owner"]}"#);
        assert_eq!(path_of(&e), "prohibited_tags[0]");
    }

    #[test]
    fn value_alias_target_must_be_allowed() {
        let e = err(
            r#"{"required_tags":[{"name":"Environment","allowed_values":["production"]}],
                "value_aliases":{"Environment":{"prod":["prd"]}}}"#,
        );
        assert_eq!(path_of(&e), "value_aliases.Environment.prod");
    }

    #[test]
    fn value_alias_variant_means_one_value() {
        let e = err(r#"{"required_tags":[{"name":"E"}],
                "value_aliases":{"E":{"a":["x"],"b":["x"]}}}"#);
        assert_eq!(path_of(&e), "value_aliases.E.b[0]");
    }

    #[test]
    fn conflicts_need_two_conditions() {
        let e = err(r#"{"required_tags":[],"conflicts":[{"tags":[{"key":"A","equals":"1"}]}]}"#);
        assert_eq!(path_of(&e), "conflicts[0].tags");
    }

    #[test]
    fn max_tags_zero_refused() {
        let e = err(r#"{"required_tags":[],"max_tags":0}"#);
        assert_eq!(path_of(&e), "max_tags");
        let p = parse_policy(r#"{"required_tags":[],"max_tags":{"limit":5,"severity":"low"}}"#)
            .unwrap();
        assert_eq!(p.max_tags(), Some((5, Severity::Low)));
    }

    #[test]
    fn empty_and_reserved_keys_refused() {
        assert_eq!(
            path_of(&err(r#"{"required_tags":[{"name":""}]}"#)),
            "required_tags[0].name"
        );
        assert_eq!(
            path_of(&err(r#"{"required_tags":[{"name":"aws:foo"}]}"#)),
            "required_tags[0].name"
        );
        assert_eq!(
            path_of(&err(r#"{"required_tags":[{"name":" A"}]}"#)),
            "required_tags[0].name"
        );
        assert_eq!(
            path_of(&err(
                r#"{"required_tags":[{"name":"A","applies_to":[""]}]}"#
            )),
            "required_tags[0].applies_to[0]"
        );
    }

    #[test]
    fn python_peer_policy_reads_unchanged() {
        // The shape of the best-known Python server's policy files, with nulls, empty
        // applies_to, already-anchored regexes, a documentation block and naming rules.
        let p = parse_policy(
            r#"{
              "version": "1.1", "last_updated": "2026-01-06T00:00:00Z",
              "description": "Universal tagging policy",
              "required_tags": [
                {"name": "CostCenter", "description": "dept", "allowed_values": ["Engineering", "Sales"],
                 "validation_regex": null, "applies_to": []},
                {"name": "Owner", "description": "email", "allowed_values": null,
                 "validation_regex": "^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$", "applies_to": []},
                {"name": "Environment", "allowed_values": ["production", "staging"],
                 "validation_regex": null, "applies_to": ["ec2:instance", "rds:db"]}
              ],
              "optional_tags": [{"name": "Project", "description": "p", "allowed_values": null}],
              "supported_resource_types": {"_comment": "docs", "compute": ["ec2:instance"]},
              "tag_naming_rules": {"case_sensitivity": false, "allow_special_characters": false,
                                   "max_key_length": 128, "max_value_length": 256}
            }"#,
        )
        .expect("peer format must load");
        assert_eq!(
            p.required_key_names(),
            vec!["CostCenter", "Owner", "Environment"]
        );
        assert_eq!(p.key_matching(), KeyMatching::CaseInsensitive);
        assert_eq!(p.fail_at(), Severity::Low);
        assert_eq!(p.required_rules()[0].severity, Severity::High);
        assert_eq!(p.rules_for_type("s3:bucket"), vec![0, 1]);
        assert_eq!(p.rules_for_type("ec2:instance"), vec![0, 1, 2]);
        assert_eq!(p.file().version.as_deref(), Some("1.1"));
    }

    #[test]
    fn case_sensitivity_true_means_exact_matching() {
        let p = parse_policy(
            r#"{"required_tags":[{"name":"A"}],"tag_naming_rules":{"case_sensitivity":true}}"#,
        )
        .unwrap();
        assert_eq!(p.key_matching(), KeyMatching::Exact);
        let p = parse_policy(
            r#"{"key_matching":"case_insensitive","required_tags":[{"name":"A"}],
                "tag_naming_rules":{"case_sensitivity":true}}"#,
        )
        .unwrap();
        assert_eq!(p.key_matching(), KeyMatching::CaseInsensitive);
    }

    #[test]
    fn numeric_version_is_accepted() {
        let p = parse_policy(r#"{"version": 2, "required_tags": []}"#).unwrap();
        assert_eq!(p.file().version.as_deref(), Some("2"));
    }
}
