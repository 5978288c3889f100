//! What an inventory knows about its accounts (AWS accounts, Azure subscriptions, GCP projects)
//! besides their ids: a readable name, where they sit in the organisation (OU paths) and the
//! tags an account list gave them. Answers show the names next to the ids (`by_account`), and
//! the tools' `accounts` filter accepts a name as well as an id.
//!
//! Any source can fill it: the Organizations fan-out does; Resource Explorer, Config or exported
//! files may later. Resources keep the id: names change, ids do not.

use std::collections::BTreeMap;

/// One account's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    /// The account's name (`prod`), when the source gave one.
    pub name: Option<String>,
    /// Where the account sits in the organisation (`o-abc/r-root/ou-prod/`, or `/Prod` from an
    /// accounts.yml `path:` tag).
    pub paths: Vec<String>,
    /// Tags an account list gave the account (`type:prod`, `path:/OU`).
    pub tags: Vec<String>,
}

/// Account id → metadata, for every account the inventory covers (or tried to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountDirectory {
    by_id: BTreeMap<String, AccountInfo>,
}

impl AccountDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an account (a later record of the same id replaces the earlier one).
    pub fn insert(&mut self, id: impl Into<String>, info: AccountInfo) {
        self.by_id.insert(id.into(), info);
    }

    pub fn get(&self, id: &str) -> Option<&AccountInfo> {
        self.by_id.get(id)
    }

    /// The account's name, when known and not empty.
    pub fn name(&self, id: &str) -> Option<&str> {
        self.by_id
            .get(id)
            .and_then(|i| i.name.as_deref())
            .filter(|n| !n.is_empty())
    }

    /// `111111111111 (prod)` when the name is known, else the id.
    pub fn label(&self, id: &str) -> String {
        match self.name(id) {
            Some(name) => format!("{id} ({name})"),
            None => id.to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every account, by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AccountInfo)> {
        self.by_id.iter().map(|(id, info)| (id.as_str(), info))
    }

    /// An `accounts` filter with names turned into ids: each value is kept as given (it may be
    /// an id, or an account this directory does not know) and the ids of the accounts named so
    /// are added. Names match without regard to case; `111111111111 (prod)` (a label, as
    /// answers print it) matches too.
    pub fn resolve(&self, wanted: &[String]) -> Vec<String> {
        let mut ids: Vec<String> = Vec::with_capacity(wanted.len());
        for w in wanted {
            ids.push(w.clone());
            let w = w.trim();
            if let Some((id, _)) = w.split_once(" (")
                && self.by_id.contains_key(id)
            {
                ids.push(id.to_string());
            }
            for (id, info) in &self.by_id {
                if info
                    .name
                    .as_deref()
                    .is_some_and(|n| !n.is_empty() && n.eq_ignore_ascii_case(w))
                {
                    ids.push(id.clone());
                }
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> AccountDirectory {
        let mut d = AccountDirectory::new();
        d.insert(
            "111111111111",
            AccountInfo {
                name: Some("prod".into()),
                ..AccountInfo::default()
            },
        );
        d.insert(
            "222222222222",
            AccountInfo {
                name: Some("Dev".into()),
                ..AccountInfo::default()
            },
        );
        d.insert("333333333333", AccountInfo::default());
        d
    }

    #[test]
    fn labels_show_the_name_when_known() {
        let d = directory();
        assert_eq!(d.label("111111111111"), "111111111111 (prod)");
        assert_eq!(d.label("333333333333"), "333333333333");
        assert_eq!(d.label("999999999999"), "999999999999");
        assert_eq!(d.name("333333333333"), None);
    }

    #[test]
    fn filters_accept_ids_names_and_labels() {
        let d = directory();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(d.resolve(&s(&["dev"])), s(&["222222222222", "dev"]));
        assert_eq!(d.resolve(&s(&["111111111111"])), s(&["111111111111"]));
        assert_eq!(
            d.resolve(&s(&["111111111111 (prod)"])),
            s(&["111111111111", "111111111111 (prod)"])
        );
        // Unknown values are kept (they match nothing, as before).
        assert_eq!(d.resolve(&s(&["nope"])), s(&["nope"]));
        assert!(d.resolve(&[]).is_empty());
    }
}
