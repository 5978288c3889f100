//! The accounts a multi-account scan covers and the role to assume in each: from the
//! organisation (`organizations:ListAccounts`, every page, ACTIVE accounts only) or from a Cloud
//! Custodian c7n-org `accounts.yml` read as is.
//!
//! OU paths are kept as account metadata when they cost nothing: the `Paths` field of
//! `ListAccounts` (when AWS fills it) and `path:/OU` tags of an accounts.yml. Tagwarden does not
//! walk `ListParents`, so the calls needed stay one `ListAccounts` page per 20 accounts.
//!
//! Parsing and validation are pure (unit-tested); only `list_organization` calls AWS.

use aws_config::SdkConfig;
use serde::Deserialize;
use serde_norway::Value;

use crate::aws::{CallCounter, next_token, summarise_sdk_error};
use crate::inventory::AccountInfo;

/// The role assumed in every account unless told otherwise: Organizations creates it in the
/// accounts it creates (with AdministratorAccess); invited accounts and the management account
/// do not have it.
pub(crate) const DEFAULT_ROLE_NAME: &str = "OrganizationAccountAccessRole";

/// `ListAccounts` page size: the most AWS allows, so pages = ⌈accounts ÷ 20⌉.
const LIST_ACCOUNTS_PAGE: i32 = 20;

/// Where the list of accounts comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountSource {
    /// `organizations:ListAccounts` with the caller's credentials (management or delegated
    /// administrator account).
    Organization,
    /// A c7n-org `accounts.yml`.
    File(std::path::PathBuf),
}

/// How to get into each account when the list does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoleSettings {
    /// Role name (optionally with an IAM path: `tagwarden/ReadOnly`) assumed in every account.
    pub role_name: String,
    /// `ExternalId` passed to `AssumeRole`, when the role's trust policy requires one.
    pub external_id: Option<String>,
}

impl Default for RoleSettings {
    fn default() -> Self {
        RoleSettings {
            role_name: DEFAULT_ROLE_NAME.to_string(),
            external_id: None,
        }
    }
}

/// One account to scan and how to get in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountTarget {
    /// 12 digits.
    pub id: String,
    pub name: Option<String>,
    /// Regions for this account (accounts.yml `regions`); empty means the scan's regions.
    pub regions: Vec<String>,
    /// Role ARNs assumed in order; more than one is role chaining (each assumed with the
    /// previous one's credentials). Never empty.
    pub roles: Vec<String>,
    pub external_id: Option<String>,
    /// OU paths (from `ListAccounts` `Paths` or accounts.yml `path:` tags).
    pub paths: Vec<String>,
    /// accounts.yml `tags` (`type:prod`).
    pub tags: Vec<String>,
    /// The organisation's management account, where `OrganizationAccountAccessRole` does not
    /// exist (known from the account ARNs `ListAccounts` returns).
    pub management: bool,
}

impl AccountTarget {
    /// `111111111111 (prod)`, or the id.
    pub(crate) fn label(&self) -> String {
        match self.name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => format!("{} ({name})", self.id),
            None => self.id.clone(),
        }
    }

    /// The account's metadata, as the inventory keeps it.
    pub(crate) fn info(&self) -> AccountInfo {
        AccountInfo {
            name: self.name.clone(),
            paths: self.paths.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// An account as `ListAccounts` described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OrgAccount {
    pub id: String,
    pub arn: Option<String>,
    pub name: Option<String>,
    /// `State` (ACTIVE, SUSPENDED, PENDING_ACTIVATION, PENDING_CLOSURE, CLOSED).
    pub state: Option<String>,
    /// The retired `Status` field, read only when `State` is missing.
    pub status: Option<String>,
    pub paths: Vec<String>,
}

/// The role ARN of `role_name` in account `id`.
pub(crate) fn role_arn(partition: &str, id: &str, role_name: &str) -> String {
    format!("arn:{partition}:iam::{id}:role/{role_name}")
}

/// Checks the settings given on the command line (role name and external id), so a typo is
/// reported before any call.
pub(crate) fn validate_settings(roles: &RoleSettings) -> Result<(), String> {
    let name = roles.role_name.trim_matches('/');
    let last = name.rsplit('/').next().unwrap_or_default();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if last.is_empty() || last.len() > 64 || !name.chars().all(|c| allowed(c) || c == '/') {
        return Err(format!(
            "--aws-role-name `{}` is not an IAM role name (1-64 of letters, digits and _+=,.@-, \
             optionally after a path such as `tagwarden/`)",
            roles.role_name
        ));
    }
    if let Some(id) = &roles.external_id {
        validate_external_id(id).map_err(|e| format!("--aws-external-id {e}"))?;
    }
    Ok(())
}

fn validate_external_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
    if id.len() < 2 || id.len() > 1224 || !id.chars().all(allowed) {
        return Err(
            "must be 2-1224 of letters, digits and _+=,.@:/- (the STS ExternalId rule)".into(),
        );
    }
    Ok(())
}

/// The accounts to scan from the organisation's listing: `State == ACTIVE` only (suspended,
/// closed or pending accounts cannot be entered), each with `role_name` in it. Returns the
/// targets and, for the coverage note, the accounts left out and why.
pub(crate) fn targets_from_org(
    accounts: &[OrgAccount],
    roles: &RoleSettings,
) -> (Vec<AccountTarget>, Vec<String>) {
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for a in accounts {
        let state = a.state.as_deref().or(a.status.as_deref()).unwrap_or("");
        let label = match a.name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => format!("{} ({n})", a.id),
            None => a.id.clone(),
        };
        if !state.eq_ignore_ascii_case("ACTIVE") {
            let state = if state.is_empty() { "no state" } else { state };
            skipped.push(format!("{label}: {state}"));
            continue;
        }
        // arn:aws:organizations::<management id>:account/o-xxx/<account id>
        let arn_parts: Vec<&str> = a.arn.as_deref().unwrap_or_default().split(':').collect();
        let partition = arn_parts
            .get(1)
            .filter(|p| !p.is_empty())
            .copied()
            .unwrap_or("aws");
        let management = arn_parts.get(4).is_some_and(|m| *m == a.id);
        targets.push(AccountTarget {
            id: a.id.clone(),
            name: a.name.clone(),
            regions: Vec::new(),
            roles: vec![role_arn(
                partition,
                &a.id,
                roles.role_name.trim_matches('/'),
            )],
            external_id: roles.external_id.clone(),
            paths: a.paths.clone(),
            tags: Vec::new(),
            management,
        });
    }
    (targets, skipped)
}

/// The root of a c7n-org accounts file. Other clouds' lists are refused with a clear message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    accounts: Option<Vec<Value>>,
    subscriptions: Option<Value>,
    projects: Option<Value>,
    tenancies: Option<Value>,
    /// Policy variables for c7n; nothing for Tagwarden.
    #[serde(rename = "vars")]
    _vars: Option<Value>,
}

/// One account entry. Unknown keys (`email`, `display_name`, `org_id`, `vars`) are accepted
/// and ignored, as c7n-org does.
#[derive(Deserialize)]
struct RawAccount {
    account_id: Option<Value>,
    name: Option<String>,
    regions: Option<Vec<String>>,
    role: Option<RawRole>,
    external_id: Option<String>,
    profile: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRole {
    One(String),
    Chain(Vec<String>),
}

/// Reads a c7n-org `accounts.yml`: `accounts: [{account_id, name, regions, role, external_id,
/// tags, vars}]`. `role` is an ARN or a list of ARNs (role chaining); without it the account
/// gets `--aws-role-name`; `external_id` without one gets `--aws-external-id`. `profile` is
/// refused: Tagwarden assumes roles, it does not switch profiles per account.
pub(crate) fn parse_accounts_file(
    text: &str,
    roles: &RoleSettings,
) -> Result<Vec<AccountTarget>, String> {
    let file: AccountsFile = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    for (key, present, what) in [
        (
            "subscriptions",
            file.subscriptions.is_some(),
            "Azure subscriptions",
        ),
        ("projects", file.projects.is_some(), "GCP projects"),
        ("tenancies", file.tenancies.is_some(), "OCI tenancies"),
    ] {
        if present {
            return Err(format!(
                "`{key}:` lists {what}; --aws-accounts reads the AWS `accounts:` list"
            ));
        }
    }
    let Some(entries) = file.accounts else {
        return Err(
            "no `accounts:` list (c7n-org format: accounts: [{account_id, name, \
                    regions, role, ...}])"
                .into(),
        );
    };
    if entries.is_empty() {
        return Err("the `accounts:` list is empty".into());
    }
    let mut targets: Vec<AccountTarget> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let at = |e: String| format!("account #{} {e}", index + 1);
        let raw: RawAccount = serde_norway::from_value(entry).map_err(|e| at(e.to_string()))?;
        let id = account_id(raw.account_id.as_ref()).map_err(at)?;
        let at = |e: String| match raw.name.as_deref() {
            Some(n) => format!("account {id} ({n}): {e}"),
            None => format!("account {id}: {e}"),
        };
        if targets.iter().any(|t| t.id == id) {
            return Err(at("is listed twice".into()));
        }
        if raw.profile.is_some() {
            return Err(at(
                "sets `profile`, which Tagwarden does not use: give `role` (an \
                           ARN) instead, or remove `profile` to assume --aws-role-name"
                    .into(),
            ));
        }
        let role_list = match raw.role {
            Some(RawRole::One(arn)) => vec![arn],
            Some(RawRole::Chain(arns)) if arns.is_empty() => {
                return Err(at("`role` is an empty list".into()));
            }
            Some(RawRole::Chain(arns)) => arns,
            None => vec![role_arn("aws", &id, roles.role_name.trim_matches('/'))],
        };
        for arn in &role_list {
            if !arn.starts_with("arn:") || !arn.contains(":role/") {
                return Err(at(format!(
                    "`role` `{arn}` is not a role ARN (arn:aws:iam::123456789012:role/Name)"
                )));
            }
        }
        if let Some(e) = &raw.external_id {
            validate_external_id(e).map_err(|e| at(format!("`external_id` {e}")))?;
        }
        let regions = raw.regions.unwrap_or_default();
        for r in &regions {
            if r.eq_ignore_ascii_case("all") {
                return Err(at("`regions: [all]` is not supported (it needs \
                               ec2:DescribeRegions): list the regions"
                    .into()));
            }
            if r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(at(format!("`{r}` is not a region name")));
            }
        }
        let tags = raw.tags.unwrap_or_default();
        let paths = tags
            .iter()
            .filter_map(|t| t.strip_prefix("path:"))
            .map(str::to_string)
            .collect();
        targets.push(AccountTarget {
            id,
            name: raw.name,
            regions,
            roles: role_list,
            external_id: raw.external_id.or_else(|| roles.external_id.clone()),
            paths,
            tags,
            management: false,
        });
    }
    Ok(targets)
}

/// A 12-digit account id; an unquoted number is accepted (YAML reads it as an integer, and
/// leading zeros are restored).
fn account_id(value: Option<&Value>) -> Result<String, String> {
    let id = match value {
        None => return Err("has no `account_id`".into()),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n < 1_000_000_000_000) => {
            format!("{:012}", n.as_u64().unwrap_or_default())
        }
        Some(other) => {
            return Err(format!(
                "`account_id` {} is not a 12-digit account id",
                serde_norway::to_string(other)
                    .unwrap_or_default()
                    .trim_end()
            ));
        }
    };
    if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`account_id` `{id}` is not a 12-digit account id"));
    }
    Ok(id)
}

/// Every account of the organisation (`ListAccounts`, every page). Returns the accounts and
/// the pages read, or why the listing failed.
pub(crate) async fn list_organization(
    sdk: &SdkConfig,
    counter: &CallCounter,
) -> Result<(Vec<OrgAccount>, u64), String> {
    let client = crate::aws::organizations::client(sdk, Some(counter));
    let mut accounts = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0u64;
    loop {
        let page = client
            .list_accounts()
            .max_results(LIST_ACCOUNTS_PAGE)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| summarise_sdk_error("ListAccounts", "the organization", &e))?;
        pages += 1;
        for a in page.accounts() {
            let Some(id) = a.id() else { continue };
            #[allow(deprecated)]
            let status = a.status().map(|s| s.as_str().to_string());
            accounts.push(OrgAccount {
                id: id.to_string(),
                arn: a.arn().map(str::to_string),
                name: a.name().map(str::to_string),
                state: a.state().map(|s| s.as_str().to_string()),
                status,
                paths: a.paths().to_vec(),
            });
        }
        match next_token(
            token.as_deref(),
            page.next_token(),
            "ListAccounts",
            "the organization",
        )? {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok((accounts, pages))
}

#[cfg(test)]
mod tests;
