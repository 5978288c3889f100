//! What a verified caller may do: three ordered roles, `viewer < approver < admin`. Each tool
//! says which role a call needs (`Tool::ROLE`, per action where a tool both reads and writes);
//! the guard compares it with the caller's before the tool runs. A role comes from an API
//! token's entry (`name:role:token`) or from OAuth scopes (`tagwarden:read`, `…:approve`,
//! `…:admin`); the local user of stdio and the command line has every role.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A caller's rights; each role includes the ones below it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: compliance, costs, history, its own audit rows, listings of virtual tags,
    /// rules, anomalies and promotion plans.
    Viewer,
    /// Also decides in Tagwarden's own store: virtual tags (apply, approve, deny), rules,
    /// anomaly decisions, promotion plans (made, not approved).
    Approver,
    /// Also changes the cloud and reads everyone's calls: approves and applies promotion
    /// plans, reads every principal's audit rows.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Approver, Role::Admin];

    /// The name used in flags, token files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// The OAuth scope that grants this role.
    pub fn scope(self) -> &'static str {
        match self {
            Role::Viewer => "tagwarden:read",
            Role::Approver => "tagwarden:approve",
            Role::Admin => "tagwarden:admin",
        }
    }

    /// A role by its name (case-insensitive).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The highest role the granted OAuth scopes give; None when none of them is Tagwarden's
    /// (the token is valid but may do nothing here).
    pub fn from_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Option<Role> {
        scopes
            .into_iter()
            .filter_map(|s| Role::ALL.into_iter().find(|r| r.scope() == s))
            .max()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Approver && Role::Approver < Role::Admin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
            assert_eq!(Role::parse(&r.name().to_uppercase()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn the_highest_tagwarden_scope_wins_and_others_are_ignored() {
        assert_eq!(Role::from_scopes(["openid", "email"]), None);
        assert_eq!(Role::from_scopes(["tagwarden:read"]), Some(Role::Viewer));
        assert_eq!(
            Role::from_scopes(["tagwarden:read", "tagwarden:admin", "tagwarden:approve"]),
            Some(Role::Admin)
        );
        // Exact names only: a prefix or another case grants nothing.
        assert_eq!(
            Role::from_scopes(["tagwarden:adminx", "TAGWARDEN:READ"]),
            None
        );
    }
}
