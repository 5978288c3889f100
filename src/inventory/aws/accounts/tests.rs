use super::*;

fn roles() -> RoleSettings {
    RoleSettings {
        role_name: "TagwardenReadOnly".into(),
        external_id: Some("ext-123".into()),
    }
}

fn org(id: &str, name: &str, state: Option<&str>, status: Option<&str>) -> OrgAccount {
    OrgAccount {
        id: id.into(),
        arn: Some(format!(
            "arn:aws:organizations::111111111111:account/o-abc/{id}"
        )),
        name: Some(name.into()),
        state: state.map(str::to_string),
        status: status.map(str::to_string),
        paths: Vec::new(),
    }
}

#[test]
fn only_active_accounts_are_scanned_and_the_management_account_is_known() {
    let accounts = vec![
        org("111111111111", "mgmt", Some("ACTIVE"), Some("ACTIVE")),
        OrgAccount {
            paths: vec!["o-abc/r-root/ou-prod/".into()],
            ..org("222222222222", "prod", Some("ACTIVE"), None)
        },
        org("333333333333", "old", Some("SUSPENDED"), Some("SUSPENDED")),
        org(
            "444444444444",
            "closing",
            Some("PENDING_CLOSURE"),
            Some("ACTIVE"),
        ),
        // Without State, the retired Status decides.
        org("555555555555", "legacy", None, Some("ACTIVE")),
    ];
    let (targets, skipped) = targets_from_org(&accounts, &roles());
    let ids: Vec<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["111111111111", "222222222222", "555555555555"]);
    assert_eq!(
        skipped,
        [
            "333333333333 (old): SUSPENDED",
            "444444444444 (closing): PENDING_CLOSURE"
        ]
    );
    assert!(targets[0].management);
    assert!(!targets[1].management);
    assert_eq!(
        targets[1].roles,
        ["arn:aws:iam::222222222222:role/TagwardenReadOnly"]
    );
    assert_eq!(targets[1].external_id.as_deref(), Some("ext-123"));
    assert_eq!(targets[1].label(), "222222222222 (prod)");
    // OU paths come free with ListAccounts and are kept as account metadata.
    assert_eq!(targets[1].info().paths, ["o-abc/r-root/ou-prod/"]);
    assert_eq!(targets[1].info().name.as_deref(), Some("prod"));
}

#[test]
fn the_partition_comes_from_the_account_arn() {
    let mut a = org("222222222222", "cn", Some("ACTIVE"), None);
    a.arn = Some("arn:aws-cn:organizations::111111111111:account/o-abc/222222222222".into());
    let (targets, _) = targets_from_org(&[a], &RoleSettings::default());
    assert_eq!(
        targets[0].roles,
        ["arn:aws-cn:iam::222222222222:role/OrganizationAccountAccessRole"]
    );
}

#[test]
fn a_c7n_org_accounts_file_is_read_as_is() {
    let text = r#"
vars:
  owner: finops
accounts:
- account_id: '123123123123'
  name: account-1
  email: a@example.com
  regions:
  - us-east-1
  - us-west-2
  role: arn:aws:iam::123123123123:role/CloudCustodian
  external_id: their-id
  tags:
  - type:prod
  - path:/Workloads/Prod
  vars:
    team: a
- account_id: 012345678901
  name: account-2
  role:
  - arn:aws:iam::999999999999:role/Hub
  - arn:aws:iam::012345678901:role/Spoke
- account_id: '222222222222'
"#;
    let t = parse_accounts_file(text, &roles()).expect("valid");
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].id, "123123123123");
    assert_eq!(t[0].name.as_deref(), Some("account-1"));
    assert_eq!(t[0].regions, ["us-east-1", "us-west-2"]);
    assert_eq!(
        t[0].roles,
        ["arn:aws:iam::123123123123:role/CloudCustodian"]
    );
    assert_eq!(t[0].external_id.as_deref(), Some("their-id"));
    assert_eq!(t[0].paths, ["/Workloads/Prod"]);
    assert_eq!(t[0].tags, ["type:prod", "path:/Workloads/Prod"]);
    // An unquoted id keeps its leading zero; a list of roles is a chain.
    assert_eq!(t[1].id, "012345678901");
    assert_eq!(t[1].roles.len(), 2);
    assert_eq!(t[1].external_id.as_deref(), Some("ext-123"));
    // No role: --aws-role-name in that account.
    assert_eq!(
        t[2].roles,
        ["arn:aws:iam::222222222222:role/TagwardenReadOnly"]
    );
    assert!(t[2].regions.is_empty());
}

#[test]
fn accounts_files_are_validated_with_clear_errors() {
    let err = |text: &str| parse_accounts_file(text, &RoleSettings::default()).unwrap_err();
    assert!(
        err("accounts:\n- account_id: '12345'\n")
            .contains("account #1 `account_id` `12345` is not a 12-digit")
    );
    assert!(err("accounts:\n- name: x\n").contains("account #1 has no `account_id`"));
    assert!(
        err("accounts:\n- account_id: '111111111111'\n- account_id: '111111111111'\n")
            .contains("account 111111111111: is listed twice")
    );
    assert!(
        err("accounts:\n- account_id: '111111111111'\n  name: p\n  profile: prod\n")
            .contains("account 111111111111 (p): sets `profile`")
    );
    assert!(
        err("accounts:\n- account_id: '111111111111'\n  role: CloudCustodian\n")
            .contains("is not a role ARN")
    );
    assert!(err("accounts:\n- account_id: '111111111111'\n  role: []\n").contains("empty list"));
    assert!(
        err("accounts:\n- account_id: '111111111111'\n  regions: [all]\n")
            .contains("`regions: [all]` is not supported")
    );
    assert!(
        err("accounts:\n- account_id: '111111111111'\n  external_id: x\n")
            .contains("`external_id` must be 2-1224")
    );
    assert!(err("subscriptions:\n- subscription_id: abc\n").contains("Azure subscriptions"));
    assert!(err("acounts: []\n").contains("unknown field `acounts`"));
    assert!(err("accounts: []\n").contains("empty"));
    assert!(err("vars: {}\n").contains("no `accounts:` list"));
    assert!(err("accounts: [").contains("line"));
}

#[test]
fn command_line_role_settings_are_checked() {
    assert!(validate_settings(&RoleSettings::default()).is_ok());
    let ok = RoleSettings {
        role_name: "tagwarden/ReadOnly".into(),
        external_id: Some("abc:def".into()),
    };
    assert!(validate_settings(&ok).is_ok());
    let bad = RoleSettings {
        role_name: "Read Only".into(),
        external_id: None,
    };
    assert!(
        validate_settings(&bad)
            .unwrap_err()
            .contains("--aws-role-name")
    );
    let bad_id = RoleSettings {
        role_name: "R".into(),
        external_id: Some("x".into()),
    };
    assert!(
        validate_settings(&bad_id)
            .unwrap_err()
            .contains("--aws-external-id")
    );
}
