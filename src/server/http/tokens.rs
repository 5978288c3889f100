//! Static bearer tokens and the principals they stand for: `--api-tokens` entries (a plain
//! `token`, or `name:role:token`), `--admin-tokens` and the lines of `--api-tokens-file`.
//!
//! A plain API token is an approver (`token:<12 hex of its SHA-256>`), an admin token an
//! administrator with the same kind of id, and a named entry has the role it says with the
//! id `token:<name>`. No message here ever contains a token: entries are named by position,
//! file lines by number.

use std::path::Path;

use sha2::Digest;

use super::HttpError;
use crate::app::Role;
use crate::guard::Principal;

/// An accepted token and who presents it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StaticToken {
    pub(super) secret: String,
    pub(super) principal: Principal,
}

/// The principal id of a plain token: stable, not secret.
pub(super) fn digest_id(token: &str) -> String {
    let digest = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    format!("token:{}", &digest[..12])
}

/// `name:role:token` when the middle part is a role; None for a plain token (which may itself
/// contain colons).
fn named(entry: &str) -> Option<(&str, Role, &str)> {
    let mut parts = entry.splitn(3, ':');
    let (name, role, token) = (parts.next()?, parts.next()?, parts.next()?);
    Some((name, Role::parse(role)?, token))
}

/// A name that can stand in a principal id and in the audit log.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("its name must have 1 to 64 characters".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("its name may hold only letters, digits, `.`, `_`, `-` and `@`".into());
    }
    if name.len() == 12 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "its name looks like a plain token's digest (12 hex digits); choose another name"
                .into(),
        );
    }
    Ok(())
}

/// Every accepted token with its principal: `api` entries (plain: approver; or
/// `name:role:token`) and `admin` entries (plain tokens of administrators). Refuses blank
/// entries, bad names, a name used twice and a token given to two different principals.
pub(super) fn static_tokens(
    api: &[String],
    admin: &[String],
) -> Result<Vec<StaticToken>, HttpError> {
    let mut out: Vec<StaticToken> = Vec::new();
    let entries = api
        .iter()
        .enumerate()
        .map(|(n, e)| (n + 1, e, false))
        .chain(admin.iter().enumerate().map(|(n, e)| (n + 1, e, true)));
    for (position, entry, is_admin) in entries {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(HttpError::BlankToken(position));
        }
        let flag = if is_admin {
            "--admin-tokens"
        } else {
            "--api-tokens"
        };
        let token = match named(entry).filter(|_| !is_admin) {
            Some((name, role, secret)) => {
                check_name(name).map_err(|why| {
                    HttpError::Tokens(format!("{flag} entry {position} (name:role:token): {why}"))
                })?;
                let secret = secret.trim();
                if secret.is_empty() {
                    return Err(HttpError::Tokens(format!(
                        "{flag} entry {position} (`{name}`): the token after `name:role:` is blank"
                    )));
                }
                if out
                    .iter()
                    .any(|t| t.principal.id == format!("token:{name}"))
                {
                    return Err(HttpError::Tokens(format!(
                        "{flag} entry {position}: the name `{name}` is used twice; give each \
                         token its own name"
                    )));
                }
                StaticToken {
                    secret: secret.to_string(),
                    principal: Principal {
                        id: format!("token:{name}"),
                        role,
                    },
                }
            }
            None => {
                if !is_admin && entry.contains(':') {
                    tracing::warn!(
                        "{flag} entry {position} contains `:` but is not name:role:token (roles: \
                         viewer, approver, admin); it is used as a plain token"
                    );
                }
                StaticToken {
                    secret: entry.to_string(),
                    principal: Principal {
                        id: digest_id(entry),
                        role: if is_admin {
                            Role::Admin
                        } else {
                            Role::Approver
                        },
                    },
                }
            }
        };
        match out.iter().position(|t| t.secret == token.secret) {
            // The same token listed twice for the same principal: once is enough.
            Some(i) if out[i].principal.id == token.principal.id => {
                out[i].principal.role = out[i].principal.role.max(token.principal.role);
            }
            Some(_) => {
                return Err(HttpError::Tokens(format!(
                    "{flag} entry {position}: this token is already given to another principal; \
                     every token must stand for one principal"
                )));
            }
            None => out.push(token),
        }
    }
    Ok(out)
}

/// Largest tokens file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The entries of a tokens file: one `name:role:token` per line; blank lines and lines
/// starting with `#` are skipped. The file must not be readable or writable by every user of
/// the machine (it holds secrets): such a file is refused.
pub(crate) fn read_tokens_file(path: &Path) -> Result<Vec<String>, HttpError> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| HttpError::Tokens(format!("cannot read the tokens file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(HttpError::Tokens(format!(
            "the tokens file {shown} is not a regular file"
        )));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(HttpError::Tokens(format!(
            "the tokens file {shown} is larger than 1 MiB; is it the right file?"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(HttpError::Tokens(format!(
                "the tokens file {shown} is open to every user of this machine (mode {mode:03o}); \
                 it holds secrets: `chmod 600 {shown}` (or 640 for a group) and start again"
            )));
        }
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| HttpError::Tokens(format!("cannot read the tokens file {shown}: {e}")))?;
    parse_tokens_file(&text).map_err(|(line, why)| {
        HttpError::Tokens(format!("tokens file {shown}, line {line}: {why}"))
    })
}

/// The entries of a tokens file's text, or (line number, why) of the first bad line.
fn parse_tokens_file(text: &str) -> Result<Vec<String>, (usize, String)> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, _, secret)) = named(line) else {
            return Err((
                n + 1,
                "expected name:role:token (role: viewer, approver or admin)".into(),
            ));
        };
        check_name(name).map_err(|why| (n + 1, why))?;
        if secret.trim().is_empty() {
            return Err((n + 1, "the token after `name:role:` is blank".into()));
        }
        entries.push(line.to_string());
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|t| t.to_string()).collect()
    }

    fn roles(tokens: &[StaticToken]) -> Vec<(String, Role)> {
        tokens
            .iter()
            .map(|t| (t.principal.id.clone(), t.principal.role))
            .collect()
    }

    #[test]
    fn plain_tokens_are_approvers_admin_tokens_admins_and_named_ones_say_their_role() {
        let tokens = static_tokens(
            &v(&["plain", "alice:viewer:s3cret", "bob:ADMIN:a:b:c"]),
            &v(&["boss"]),
        )
        .unwrap();
        assert_eq!(
            roles(&tokens),
            vec![
                (digest_id("plain"), Role::Approver),
                ("token:alice".into(), Role::Viewer),
                ("token:bob".into(), Role::Admin),
                (digest_id("boss"), Role::Admin),
            ]
        );
        // The token of a named entry is what follows `name:role:`, colons included.
        assert_eq!(tokens[1].secret, "s3cret");
        assert_eq!(tokens[2].secret, "a:b:c");
        // A colon without a role in the middle is a plain token.
        let plain = static_tokens(&v(&["x:y:z"]), &[]).unwrap();
        assert_eq!(plain[0].secret, "x:y:z");
        assert_eq!(plain[0].principal.role, Role::Approver);
        // Admin tokens are plain whatever they hold.
        let admin = static_tokens(&[], &v(&["a:viewer:b"])).unwrap();
        assert_eq!(admin[0].principal.role, Role::Admin);
    }

    #[test]
    fn bad_entries_are_refused_without_showing_the_token() {
        let err = |api: &[&str]| static_tokens(&v(api), &[]).unwrap_err().to_string();
        assert!(matches!(
            static_tokens(&v(&["a", " "]), &[]),
            Err(HttpError::BlankToken(2))
        ));
        let e = err(&["bad name:viewer:topsecret"]);
        assert!(e.contains("entry 1") && !e.contains("topsecret"), "{e}");
        assert!(err(&["a:viewer:one", "a:admin:two"]).contains("used twice"));
        assert!(err(&["a:viewer:same", "b:admin:same"]).contains("another principal"));
        assert!(err(&["0123456789ab:viewer:x"]).contains("digest"));
        assert!(err(&["a:viewer: "]).contains("blank"));
        // The same token twice for the same principal is one entry.
        assert_eq!(static_tokens(&v(&["t", " t "]), &[]).unwrap().len(), 1);
    }

    #[test]
    fn a_tokens_file_holds_named_entries_comments_and_blank_lines() {
        let ok = parse_tokens_file("# team\nalice:viewer:one\n\n  bob:approver:two  \n").unwrap();
        assert_eq!(ok, v(&["alice:viewer:one", "bob:approver:two"]));
        let (line, why) = parse_tokens_file("alice:viewer:one\njust-a-token\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(why.contains("name:role:token"), "{why}");
        assert_eq!(parse_tokens_file("x:root:y").unwrap_err().0, 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_tokens_file_open_to_everyone_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "alice:viewer:one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_tokens_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && e.contains("644"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_tokens_file(&path).unwrap(), v(&["alice:viewer:one"]));
    }
}
