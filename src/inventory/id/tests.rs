//! What ids say ([`facts`]) and which ids callers may send ([`grammar::check`]), side by side,
//! including the places where the two rules knowingly differ.

use super::azure::{self, AzureId};
use super::gcp::GcpName;
use super::*;

fn read(id: &str) -> (Option<Provider>, String, &str, &str, &str) {
    let f = facts(id);
    (
        f.provider,
        f.resource_type.to_string(),
        f.name,
        f.account,
        f.region,
    )
}

#[test]
fn facts_of_each_id_family() {
    assert_eq!(
        read("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"),
        (
            Some(Provider::Aws),
            "ec2:instance".into(),
            "i-0abc",
            "123456789012",
            "us-east-1"
        )
    );
    assert_eq!(
        read(
            "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"
        ),
        (
            Some(Provider::Azure),
            "azure:compute/virtualmachines".into(),
            "vm-1",
            "sub-1",
            ""
        )
    );
    assert_eq!(
        read("//compute.googleapis.com/projects/p1/zones/europe-west1-b/instances/vm-9"),
        (
            Some(Provider::Gcp),
            "gcp:compute/instance".into(),
            "vm-9",
            "p1",
            "europe-west1-b"
        )
    );
    // `_` is no project; regions and locations stand in for a zone.
    assert_eq!(
        read("//storage.googleapis.com/projects/_/buckets/lake"),
        (
            Some(Provider::Gcp),
            "gcp:storage/bucket".into(),
            "lake",
            "",
            ""
        )
    );
    assert_eq!(
        read("//run.googleapis.com/projects/p/locations/eu/services/api").4,
        "eu"
    );
    for other in [
        "i-0abc",
        "",
        "//example.com/x",
        "/subscriptions/",
        "//x.googleapis.com/y",
    ] {
        assert_eq!(facts(other), IdFacts::default(), "{other}");
    }
}

#[test]
fn azure_ids_are_read_in_any_case() {
    let id = AzureId::parse(
        "/SUBSCRIPTIONS/sub-2/resourcegroups/rg/PROVIDERS/microsoft.sql/servers/s1/databases/db1",
    )
    .expect("an Azure id");
    assert_eq!(id.subscription, "sub-2");
    // A child resource has the nested type, as Resource Graph's `type` column writes it.
    assert_eq!(id.resource_type, "azure:sql/servers/databases");
    assert_eq!(id.name, "db1");
    // Resource groups and subscriptions have Resource Graph's types; an extension resource
    // the last provider's.
    let group = AzureId::parse("/subscriptions/sub-3/resourceGroups/rg").expect("an Azure id");
    assert_eq!(
        (group.resource_type.as_str(), group.name),
        ("azure:resources/subscriptions/resourcegroups", "rg")
    );
    let sub = AzureId::parse("/subscriptions/sub-3").expect("an Azure id");
    assert_eq!(sub.resource_type, "azure:resources/subscriptions");
    let ext = AzureId::parse(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm/providers/Microsoft.Insights/diagnosticSettings/d",
    )
    .expect("an Azure id");
    assert_eq!(ext.resource_type, "azure:insights/diagnosticsettings");
    let odd = AzureId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web")
        .expect("an Azure id");
    assert_eq!(odd.resource_type, "", "a namespace and no type");
    assert_eq!(
        azure::canonical_type("SendGrid.Email/accounts"),
        "azure:sendgrid.email/accounts"
    );
    assert_eq!(azure::canonical_type(""), "");
    assert!(GcpName::parse("//compute.googleapis.com/").is_none());
}

#[test]
fn grammar_names_what_is_wrong() {
    for ok in [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
        "arn:aws:s3:::my-bucket",
        "arn:aws-cn:rds:cn-north-1:123456789012:db:orders",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "/subscriptions/0000-1111/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        "//compute.googleapis.com/projects/p/zones/z/instances/i",
    ] {
        assert_eq!(grammar::check(ok), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("", "empty"),
        ("i-0abc", "not an ARN"),
        ("arn:aws:ec2:us-east-1:123:instance/i-1", "12 digits"),
        ("arn:aws:ec2:us-east-1:123456789012", "six parts"),
        ("arn:gcp:ec2:r:123456789012:x", "partition"),
        ("arn:aws:EC2:r:123456789012:x", "service"),
        ("arn:aws:ec2:US-EAST-1:123456789012:x", "region"),
        ("arn:aws:ec2:us-east-1:123456789012:", "empty"),
        ("arn:aws:ec2:us-east-1:123456789012:instance/ i", "spaces"),
        ("//example.com/x", "GCP"),
        ("/subscriptions/", "Azure"),
    ] {
        let e = grammar::check(bad).expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
    }
}

/// The parsers read what exports write; the grammar holds callers to the canonical form. These
/// differences are kept on purpose (changing them changes which calls are refused).
#[test]
fn parsers_are_more_lenient_than_the_grammar() {
    let lower = "/SUBSCRIPTIONS/sub-1/resourceGroups/rg";
    assert_eq!(facts(lower).provider, Some(Provider::Azure));
    assert!(grammar::check(lower).is_err());
    let other_partition = "arn:gcp:ec2:r:123456789012:instance/x";
    assert_eq!(facts(other_partition).provider, Some(Provider::Aws));
    assert!(grammar::check(other_partition).is_err());
}

#[test]
fn azure_join_keys_ignore_case_and_skip_other_ids() {
    let a = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/VM1";
    let b = "/SUBSCRIPTIONS/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm1";
    assert_eq!(azure::join_key(a), azure::join_key(b));
    assert!(azure::join_key(a).is_some());
    for other in [
        "arn:aws:s3:::b",
        "i-0abc",
        "/subs/x",
        "//compute.googleapis.com/x/y",
        "",
    ] {
        assert_eq!(azure::join_key(other), None, "{other}");
    }
}
