//! Text helpers for suggestions: name tokens, name prefixes, the environment dictionary and
//! the loose comparisons used to map a stray value or key onto what the policy expects.

/// Environment concepts and the words that name them in resource names and sloppy values.
/// The first word of each entry is tried first when mapping the concept onto a policy value.
pub(super) const ENV_WORDS: &[&[&str]] = &[
    &["production", "prod", "prd", "live", "prdn"],
    &["staging", "stage", "stg", "preprod", "preproduction"],
    &["development", "dev", "develop"],
    &["sandbox", "sbx"],
    &["test", "tst", "qa", "uat"],
];

/// The environment concept a lower-case word names, if any.
pub(super) fn env_concept(word: &str) -> Option<usize> {
    ENV_WORDS.iter().position(|words| words.contains(&word))
}

/// Key names (lower-case) that mark a key as the environment key.
const ENV_KEY_NAMES: &[&str] = &["environment", "env", "stage", "environment_name", "tier"];

pub(super) fn is_env_key_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ENV_KEY_NAMES.contains(&lower.as_str())
}

/// The lower-case alphanumeric segments of a name (`/aws/lambda/Pay-API_01` → `aws`, `lambda`,
/// `pay`, `api`, `01`).
pub(super) fn segments(lower: &str) -> impl Iterator<Item = &str> {
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|s| !s.is_empty())
}

/// Splits a segment where letters meet digits (`use1` → `use`, `1`).
fn split_digits(segment: &str) -> impl Iterator<Item = &str> {
    let mut rest = segment;
    std::iter::from_fn(move || {
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        let digit = first.is_ascii_digit();
        let end = chars
            .find(|(_, c)| c.is_ascii_digit() != digit)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The word tokens of a lower-cased name (letters only, at least two characters) followed by
/// the bigrams of adjacent words (`payments-api`), which tell applications apart where single
/// words (`payments`) are shared. Calls `f` for each; repeats are possible.
pub(super) fn for_each_token(lower: &str, buffer: &mut String, mut f: impl FnMut(&str)) {
    let mut previous: Option<&str> = None;
    for segment in segments(lower) {
        for piece in split_digits(segment) {
            if piece.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            if piece.chars().count() < 2 {
                continue;
            }
            f(piece);
            if let Some(p) = previous {
                buffer.clear();
                buffer.push_str(p);
                buffer.push('-');
                buffer.push_str(piece);
                f(buffer);
            }
            previous = Some(piece);
        }
    }
}

/// The name without its index and environment: the segments before the first one that is an
/// environment word or holds a digit (`payments-api-prod-03-root` → `payments-api`). Names of
/// one application's resources share it across environments and regions.
pub(super) fn name_prefix(lower: &str, out: &mut String) -> bool {
    out.clear();
    for segment in segments(lower) {
        if env_concept(segment).is_some() || segment.chars().any(|c| c.is_ascii_digit()) {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(segment);
    }
    !out.is_empty()
}

/// Lower-case letters and digits only: `PAYMENTS_API` and `payments-api` both become
/// `paymentsapi`.
pub(super) fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance, for short key names only.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Whether a stray tag key probably means `wanted` (a policy key or one of its aliases):
/// a small misspelling (`Enviroment`) or one containing the other (`owner-team`, `app-name`).
pub(super) fn key_resembles(stray: &str, wanted: &str) -> bool {
    let (s, w) = (squash(stray), squash(wanted));
    if s.is_empty() || w.is_empty() {
        return false;
    }
    if s == w {
        return true;
    }
    let (short, long) = if s.len() <= w.len() {
        (&s, &w)
    } else {
        (&w, &s)
    };
    if short.len() >= 3 && long.starts_with(short.as_str()) {
        return true;
    }
    let allowed = if w.len() >= 8 {
        2
    } else if w.len() >= 5 {
        1
    } else {
        0
    };
    allowed > 0 && s.len().abs_diff(w.len()) <= allowed && edit_distance(&s, &w) <= allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut buffer = String::new();
        for_each_token(&name.to_lowercase(), &mut buffer, |t| {
            out.push(t.to_string())
        });
        out
    }

    #[test]
    fn tokens_and_bigrams() {
        assert_eq!(
            tokens("payments-api-prod-03"),
            vec!["payments", "api", "payments-api", "prod", "api-prod"]
        );
        assert_eq!(
            tokens("/aws/lambda/Ledger_use1"),
            vec![
                "aws",
                "lambda",
                "aws-lambda",
                "ledger",
                "lambda-ledger",
                "use",
                "ledger-use"
            ]
        );
        assert!(tokens("01-2").is_empty());
    }

    #[test]
    fn prefixes_drop_index_and_environment() {
        let mut out = String::new();
        assert!(name_prefix("payments-api-prod-03-root", &mut out));
        assert_eq!(out, "payments-api");
        assert!(name_prefix("acme-ledger-prod-use1-01", &mut out));
        assert_eq!(out, "acme-ledger");
        assert!(name_prefix("billing-db", &mut out));
        assert_eq!(out, "billing-db");
        assert!(!name_prefix("prod-01", &mut out));
    }

    #[test]
    fn stray_keys() {
        assert!(key_resembles("Enviroment", "Environment"));
        assert!(key_resembles("owner-team", "Owner"));
        assert!(key_resembles("app-name", "app"));
        assert!(!key_resembles("Team", "Owner"));
        assert!(!key_resembles("tmp", "Application"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
