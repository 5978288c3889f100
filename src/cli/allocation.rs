//! `--allocation-rules FILE` for `check` and `report`: reads shared-cost allocation rules from
//! a JSON or YAML file — a list of rules, `{"rules": [...]}`, or one rule, each the shape
//! `manage_allocation_rules` takes — checked as stored rules are (fixed shares spelling out
//! 100%). Without the flag the rules stored in history.db apply.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::cost::allocation::{AllocationRule, validate_complete};
use crate::service::allocation::{RulesChoice, RulesSource};

/// Largest rules file read (a rule is a few hundred bytes; 20 rules are allowed).
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The shapes a rules file may take.
#[derive(Deserialize)]
#[serde(untagged)]
enum RulesFile {
    List(Vec<AllocationRule>),
    Wrapped { rules: Vec<AllocationRule> },
    One(AllocationRule),
}

/// The rules a command applies: the file's when given, else the stored ones.
pub(super) fn choice(file: Option<&Path>) -> anyhow::Result<RulesChoice> {
    let Some(path) = file else {
        return Ok(RulesChoice::Stored);
    };
    Ok(RulesChoice::Given {
        rules: read(path)?,
        source: RulesSource::File,
    })
}

fn read(path: &Path) -> anyhow::Result<Vec<AllocationRule>> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .with_context(|| format!("--allocation-rules: cannot open {shown}"))?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("--allocation-rules: cannot read {shown} as UTF-8 text"))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        anyhow::bail!(
            "--allocation-rules: {shown} is over 1 MiB; a rules file holds at most 20 rules"
        );
    }
    parse(&text, is_yaml(path)).map_err(|e| anyhow::anyhow!("--allocation-rules: {shown}: {e}"))
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Parses and checks a rules file's text (no policy needed: keys and values are checked
/// against the policy when the rules apply).
fn parse(text: &str, yaml: bool) -> Result<Vec<AllocationRule>, String> {
    let shape = if yaml {
        serde_norway::from_str::<RulesFile>(text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str::<RulesFile>(text).map_err(|e| e.to_string())
    };
    let rules = match shape.map_err(|e| {
        format!(
            "not a list of allocation rules ({e}); each rule has name, key, charges and method \
             (and shares with method fixed), as manage_allocation_rules takes it"
        )
    })? {
        RulesFile::List(rules) | RulesFile::Wrapped { rules } => rules,
        RulesFile::One(rule) => vec![rule],
    };
    if rules.is_empty() {
        return Err("holds no rules; give at least one, or leave the flag out".into());
    }
    validate_complete(&rules).map_err(|e| e.to_string())?;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"{"name": "support", "key": "Environment",
        "charges": {"without_resource": true}, "method": "proportional"}"#;

    #[test]
    fn a_list_a_wrapped_list_or_one_rule() {
        for text in [
            format!("[{RULE}]"),
            format!(r#"{{"rules": [{RULE}]}}"#),
            RULE.to_string(),
        ] {
            let rules = parse(&text, false).unwrap();
            assert_eq!(rules.len(), 1, "{text}");
            assert_eq!(rules[0].name, "support");
        }
        let yaml = "rules:\n  - name: credits\n    key: Environment\n    charges:\n      \
                    without_resource: true\n    method: fixed\n    shares:\n      - value: \
                    production\n        basis_points: 6000\n      - value: (unallocated)\n        \
                    basis_points: 4000\n";
        let rules = parse(yaml, true).unwrap();
        assert_eq!(rules[0].shares.len(), 2);
    }

    #[test]
    fn bad_files_say_what_to_fix() {
        let e = parse("[]", false).unwrap_err();
        assert!(e.contains("no rules"), "{e}");
        let e = parse(r#"[{"name": "x"}]"#, false).unwrap_err();
        assert!(e.contains("name, key, charges and method"), "{e}");
        let short = r#"[{"name": "x", "key": "Environment", "charges": {"without_resource": true},
            "method": "fixed", "shares": [{"value": "production", "basis_points": 5000}]}]"#;
        let e = parse(short, false).unwrap_err();
        assert!(
            e.contains("not 10,000") && e.contains("(unallocated)"),
            "{e}"
        );
        let twice = format!("[{RULE}, {RULE}]");
        let e = parse(&twice, false).unwrap_err();
        assert!(e.contains("`name`"), "{e}");
    }
}
