//! AWS Config resource types (`AWS::EC2::Instance`) and Tagwarden's canonical `service:kind`
//! (`ec2:instance`): a table, pure and unit-tested.
//!
//! A resource's canonical type is always derived from its ARN (`id::arn`), so it is the same
//! whichever source listed it; this table is the check of that (its tests derive each entry's
//! type from a real ARN), the way to turn `--aws-resource-types` into a Config `WHERE` clause,
//! and the recipe for the ARN of the few items Config returns without one.

/// One Config resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConfigType {
    /// Config's name, e.g. `AWS::EC2::Instance`.
    pub config: &'static str,
    /// The canonical type the ARN of such a resource gives, e.g. `ec2:instance`.
    pub canonical: &'static str,
    /// How to build the ARN when Config returns none: `{partition}`, `{region}`, `{account}`
    /// and `{id}` (Config's `resourceId`) or `{name}` (its `resourceName`). None when the ARN
    /// cannot be built from those fields with certainty.
    pub arn: Option<&'static str>,
}

const fn t(config: &'static str, canonical: &'static str, arn: Option<&'static str>) -> ConfigType {
    ConfigType {
        config,
        canonical,
        arn,
    }
}

/// The types Tagwarden knows by name. Types not listed still work (their canonical type comes
/// from the ARN); only the `WHERE` translation of a type filter and ARN building need an entry.
pub(crate) const CONFIG_TYPES: &[ConfigType] = &[
    t(
        "AWS::EC2::Instance",
        "ec2:instance",
        Some("arn:{partition}:ec2:{region}:{account}:instance/{id}"),
    ),
    t(
        "AWS::EC2::Volume",
        "ec2:volume",
        Some("arn:{partition}:ec2:{region}:{account}:volume/{id}"),
    ),
    // EC2 snapshot ARNs carry no account.
    t(
        "AWS::EC2::Snapshot",
        "ec2:snapshot",
        Some("arn:{partition}:ec2:{region}::snapshot/{id}"),
    ),
    t(
        "AWS::EC2::SecurityGroup",
        "ec2:security-group",
        Some("arn:{partition}:ec2:{region}:{account}:security-group/{id}"),
    ),
    t(
        "AWS::EC2::VPC",
        "ec2:vpc",
        Some("arn:{partition}:ec2:{region}:{account}:vpc/{id}"),
    ),
    t(
        "AWS::EC2::Subnet",
        "ec2:subnet",
        Some("arn:{partition}:ec2:{region}:{account}:subnet/{id}"),
    ),
    t(
        "AWS::EC2::NetworkInterface",
        "ec2:network-interface",
        Some("arn:{partition}:ec2:{region}:{account}:network-interface/{id}"),
    ),
    t(
        "AWS::EC2::NatGateway",
        "ec2:natgateway",
        Some("arn:{partition}:ec2:{region}:{account}:natgateway/{id}"),
    ),
    t(
        "AWS::EC2::InternetGateway",
        "ec2:internet-gateway",
        Some("arn:{partition}:ec2:{region}:{account}:internet-gateway/{id}"),
    ),
    t(
        "AWS::EC2::RouteTable",
        "ec2:route-table",
        Some("arn:{partition}:ec2:{region}:{account}:route-table/{id}"),
    ),
    t(
        "AWS::EC2::LaunchTemplate",
        "ec2:launch-template",
        Some("arn:{partition}:ec2:{region}:{account}:launch-template/{id}"),
    ),
    t("AWS::EC2::EIP", "ec2:elastic-ip", None),
    t(
        "AWS::S3::Bucket",
        "s3:bucket",
        Some("arn:{partition}:s3:::{name}"),
    ),
    t(
        "AWS::RDS::DBInstance",
        "rds:db",
        Some("arn:{partition}:rds:{region}:{account}:db:{name}"),
    ),
    t(
        "AWS::RDS::DBCluster",
        "rds:cluster",
        Some("arn:{partition}:rds:{region}:{account}:cluster:{name}"),
    ),
    t("AWS::RDS::DBSnapshot", "rds:snapshot", None),
    t("AWS::RDS::DBClusterSnapshot", "rds:cluster-snapshot", None),
    t(
        "AWS::Lambda::Function",
        "lambda:function",
        Some("arn:{partition}:lambda:{region}:{account}:function:{name}"),
    ),
    t(
        "AWS::DynamoDB::Table",
        "dynamodb:table",
        Some("arn:{partition}:dynamodb:{region}:{account}:table/{name}"),
    ),
    t("AWS::SNS::Topic", "sns:topic", None),
    t("AWS::SQS::Queue", "sqs:queue", None),
    t(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "elasticloadbalancing:loadbalancer",
        None,
    ),
    t(
        "AWS::ElasticLoadBalancing::LoadBalancer",
        "elasticloadbalancing:loadbalancer",
        None,
    ),
    t("AWS::KMS::Key", "kms:key", None),
    t("AWS::Logs::LogGroup", "logs:log-group", None),
    t("AWS::ECS::Cluster", "ecs:cluster", None),
    t("AWS::ECS::Service", "ecs:service", None),
    t("AWS::ECS::TaskDefinition", "ecs:task-definition", None),
    t("AWS::EKS::Cluster", "eks:cluster", None),
    t(
        "AWS::EFS::FileSystem",
        "elasticfilesystem:file-system",
        None,
    ),
    t(
        "AWS::ElastiCache::CacheCluster",
        "elasticache:cluster",
        None,
    ),
    t("AWS::Redshift::Cluster", "redshift:cluster", None),
    t("AWS::IAM::Role", "iam:role", None),
    t("AWS::IAM::User", "iam:user", None),
    t("AWS::IAM::Policy", "iam:policy", None),
    t("AWS::CloudFormation::Stack", "cloudformation:stack", None),
    t(
        "AWS::StepFunctions::StateMachine",
        "states:stateMachine",
        None,
    ),
    t("AWS::SecretsManager::Secret", "secretsmanager:secret", None),
    t("AWS::ECR::Repository", "ecr:repository", None),
    t(
        "AWS::AutoScaling::AutoScalingGroup",
        "autoscaling:autoScalingGroup",
        None,
    ),
    t("AWS::ApiGateway::RestApi", "apigateway:restapis", None),
    t(
        "AWS::CloudFront::Distribution",
        "cloudfront:distribution",
        None,
    ),
    t("AWS::Kinesis::Stream", "kinesis:stream", None),
    t("AWS::ACM::Certificate", "acm:certificate", None),
    t("AWS::Route53::HostedZone", "route53:hostedzone", None),
];

/// Config's records about its own evaluations, not resources of the estate: never listed.
pub(crate) const CONFIG_RECORD_TYPES: &[&str] = &[
    "AWS::Config::ResourceCompliance",
    "AWS::Config::ConformancePackCompliance",
];

/// The table entry of a Config type, when Tagwarden knows it.
pub(crate) fn lookup(config_type: &str) -> Option<&'static ConfigType> {
    CONFIG_TYPES.iter().find(|t| t.config == config_type)
}

/// Whether a Config type is one of Config's own records (see `CONFIG_RECORD_TYPES`).
pub(crate) fn is_config_record(config_type: &str) -> bool {
    CONFIG_RECORD_TYPES.contains(&config_type)
}

/// The partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub(crate) fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The ARN of an item Config returned without one, when its type's recipe is known and the
/// fields it needs are there.
pub(crate) fn build_arn(
    config_type: &str,
    resource_id: Option<&str>,
    resource_name: Option<&str>,
    region: &str,
    account: &str,
) -> Option<String> {
    let template = lookup(config_type)?.arn?;
    let mut arn = template
        .replace("{partition}", partition_of(region))
        .replace("{region}", region)
        .replace("{account}", account);
    if arn.contains("{id}") {
        arn = arn.replace("{id}", resource_id.filter(|s| !s.is_empty())?);
    }
    if arn.contains("{name}") {
        arn = arn.replace("{name}", resource_name.filter(|s| !s.is_empty())?);
    }
    Some(arn)
}

/// Whether a canonical type passes the `--aws-resource-types` filters (the Tagging API's
/// `ResourceTypeFilters` meaning): `ec2` takes every `ec2:*`, `ec2:instance` only that type.
/// No filter takes everything.
pub(crate) fn matches_filters(canonical: &str, filters: &[String]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| match f.split_once(':') {
            Some(_) => canonical == f,
            None => canonical
                .split_once(':')
                .is_some_and(|(service, _)| service == f),
        })
}

/// The `resourceType` condition of a Config query for the `--aws-resource-types` filters:
/// `service:kind` → the Config types of that kind, `service` → `LIKE 'AWS::<Namespace>::%'`
/// for each Config namespace of that service. None when there is no filter or one of them is
/// not in the table (then every type is queried and the filter applies to the results only).
pub(crate) fn type_condition(filters: &[String]) -> Option<String> {
    let mut exact: Vec<&str> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for f in filters {
        if f.contains(':') {
            let found: Vec<&str> = CONFIG_TYPES
                .iter()
                .filter(|t| t.canonical == f)
                .map(|t| t.config)
                .collect();
            if found.is_empty() {
                return None;
            }
            exact.extend(found);
        } else {
            let mut found: Vec<String> = CONFIG_TYPES
                .iter()
                .filter(|t| t.canonical.split_once(':').is_some_and(|(s, _)| s == f))
                .filter_map(|t| t.config.rsplit_once("::").map(|(ns, _)| format!("{ns}::%")))
                .collect();
            if found.is_empty() {
                return None;
            }
            found.sort();
            found.dedup();
            prefixes.extend(found);
        }
    }
    exact.sort_unstable();
    exact.dedup();
    let mut conditions = Vec::new();
    if !exact.is_empty() {
        conditions.push(format!("resourceType IN ({})", quoted_list(&exact)));
    }
    for p in prefixes {
        conditions.push(format!("resourceType LIKE {}", quote(&p)));
    }
    match conditions.len() {
        0 => None,
        1 => conditions.pop(),
        _ => Some(format!("({})", conditions.join(" OR "))),
    }
}

/// A value as a quoted SQL string literal (quotes doubled).
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `'a', 'b'`: values quoted and separated for `IN (...)`.
pub(crate) fn quoted_list<S: AsRef<str>>(values: &[S]) -> String {
    values
        .iter()
        .map(|v| quote(v.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::id::arn::parse;

    /// A real ARN of each known type: the canonical type in the table must be the one the ARN
    /// gives, or the same resource would get two types depending on the source.
    const SAMPLE_ARNS: &[(&str, &str)] = &[
        (
            "AWS::EC2::Instance",
            "arn:aws:ec2:us-east-1:111111111111:instance/i-0abc",
        ),
        (
            "AWS::EC2::Volume",
            "arn:aws:ec2:us-east-1:111111111111:volume/vol-1",
        ),
        (
            "AWS::EC2::Snapshot",
            "arn:aws:ec2:us-east-1::snapshot/snap-1",
        ),
        (
            "AWS::EC2::SecurityGroup",
            "arn:aws:ec2:us-east-1:111111111111:security-group/sg-1",
        ),
        (
            "AWS::EC2::VPC",
            "arn:aws:ec2:us-east-1:111111111111:vpc/vpc-1",
        ),
        (
            "AWS::EC2::Subnet",
            "arn:aws:ec2:us-east-1:111111111111:subnet/subnet-1",
        ),
        (
            "AWS::EC2::NetworkInterface",
            "arn:aws:ec2:us-east-1:111111111111:network-interface/eni-1",
        ),
        (
            "AWS::EC2::NatGateway",
            "arn:aws:ec2:us-east-1:111111111111:natgateway/nat-1",
        ),
        (
            "AWS::EC2::InternetGateway",
            "arn:aws:ec2:us-east-1:111111111111:internet-gateway/igw-1",
        ),
        (
            "AWS::EC2::RouteTable",
            "arn:aws:ec2:us-east-1:111111111111:route-table/rtb-1",
        ),
        (
            "AWS::EC2::LaunchTemplate",
            "arn:aws:ec2:us-east-1:111111111111:launch-template/lt-1",
        ),
        (
            "AWS::EC2::EIP",
            "arn:aws:ec2:us-east-1:111111111111:elastic-ip/eipalloc-1",
        ),
        ("AWS::S3::Bucket", "arn:aws:s3:::logs"),
        (
            "AWS::RDS::DBInstance",
            "arn:aws:rds:eu-west-1:111111111111:db:orders",
        ),
        (
            "AWS::RDS::DBCluster",
            "arn:aws:rds:eu-west-1:111111111111:cluster:orders",
        ),
        (
            "AWS::RDS::DBSnapshot",
            "arn:aws:rds:eu-west-1:111111111111:snapshot:nightly",
        ),
        (
            "AWS::RDS::DBClusterSnapshot",
            "arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:n",
        ),
        (
            "AWS::Lambda::Function",
            "arn:aws:lambda:us-east-1:111111111111:function:settle",
        ),
        (
            "AWS::DynamoDB::Table",
            "arn:aws:dynamodb:us-east-1:111111111111:table/orders",
        ),
        (
            "AWS::SNS::Topic",
            "arn:aws:sns:us-east-1:111111111111:alerts",
        ),
        ("AWS::SQS::Queue", "arn:aws:sqs:us-east-1:111111111111:jobs"),
        (
            "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/app/web/50dc6c49",
        ),
        (
            "AWS::ElasticLoadBalancing::LoadBalancer",
            "arn:aws:elasticloadbalancing:us-east-1:111111111111:loadbalancer/classic",
        ),
        (
            "AWS::KMS::Key",
            "arn:aws:kms:us-east-1:111111111111:key/1234abcd",
        ),
        (
            "AWS::Logs::LogGroup",
            "arn:aws:logs:us-east-1:111111111111:log-group:/aws/x:*",
        ),
        (
            "AWS::ECS::Cluster",
            "arn:aws:ecs:us-east-1:111111111111:cluster/prod",
        ),
        (
            "AWS::ECS::Service",
            "arn:aws:ecs:us-east-1:111111111111:service/prod/api",
        ),
        (
            "AWS::ECS::TaskDefinition",
            "arn:aws:ecs:us-east-1:111111111111:task-definition/api:3",
        ),
        (
            "AWS::EKS::Cluster",
            "arn:aws:eks:us-east-1:111111111111:cluster/prod",
        ),
        (
            "AWS::EFS::FileSystem",
            "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-1",
        ),
        (
            "AWS::ElastiCache::CacheCluster",
            "arn:aws:elasticache:us-east-1:111111111111:cluster:c1",
        ),
        (
            "AWS::Redshift::Cluster",
            "arn:aws:redshift:us-east-1:111111111111:cluster:dw",
        ),
        ("AWS::IAM::Role", "arn:aws:iam::111111111111:role/deploy"),
        ("AWS::IAM::User", "arn:aws:iam::111111111111:user/ann"),
        ("AWS::IAM::Policy", "arn:aws:iam::111111111111:policy/read"),
        (
            "AWS::CloudFormation::Stack",
            "arn:aws:cloudformation:us-east-1:111111111111:stack/web/0a1b2c",
        ),
        (
            "AWS::StepFunctions::StateMachine",
            "arn:aws:states:us-east-1:111111111111:stateMachine:flow",
        ),
        (
            "AWS::SecretsManager::Secret",
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:db-AbC",
        ),
        (
            "AWS::ECR::Repository",
            "arn:aws:ecr:us-east-1:111111111111:repository/api",
        ),
        (
            "AWS::AutoScaling::AutoScalingGroup",
            "arn:aws:autoscaling:us-east-1:111111111111:autoScalingGroup:1a2b:autoScalingGroupName/web",
        ),
        (
            "AWS::ApiGateway::RestApi",
            "arn:aws:apigateway:us-east-1::/restapis/abc",
        ),
        (
            "AWS::CloudFront::Distribution",
            "arn:aws:cloudfront::111111111111:distribution/E1",
        ),
        (
            "AWS::Kinesis::Stream",
            "arn:aws:kinesis:us-east-1:111111111111:stream/clicks",
        ),
        (
            "AWS::ACM::Certificate",
            "arn:aws:acm:us-east-1:111111111111:certificate/1-2-3",
        ),
        (
            "AWS::Route53::HostedZone",
            "arn:aws:route53:::hostedzone/Z1",
        ),
    ];

    #[test]
    fn every_known_type_is_the_type_its_arn_gives() {
        assert_eq!(
            SAMPLE_ARNS.len(),
            CONFIG_TYPES.len(),
            "one sample ARN per type"
        );
        for (config, arn) in SAMPLE_ARNS {
            let entry = lookup(config).unwrap_or_else(|| panic!("{config} in the table"));
            let derived = parse(arn).expect("valid ARN").canonical_type();
            assert_eq!(derived, entry.canonical, "{config}: {arn}");
        }
    }

    #[test]
    fn built_arns_are_the_real_arns_of_their_type() {
        for ty in CONFIG_TYPES.iter().filter(|t| t.arn.is_some()) {
            let arn = build_arn(
                ty.config,
                Some("the-id"),
                Some("the-name"),
                "eu-west-1",
                "111111111111",
            )
            .expect("buildable");
            let parsed = parse(&arn).expect("a built ARN parses");
            assert_eq!(parsed.canonical_type(), ty.canonical, "{arn}");
            assert_eq!(parsed.partition, "aws");
        }
        assert_eq!(
            build_arn(
                "AWS::EC2::Instance",
                Some("i-1"),
                None,
                "us-east-1",
                "111111111111"
            )
            .as_deref(),
            Some("arn:aws:ec2:us-east-1:111111111111:instance/i-1")
        );
        assert_eq!(
            build_arn(
                "AWS::S3::Bucket",
                Some("logs"),
                Some("logs"),
                "eu-west-1",
                "1"
            )
            .as_deref(),
            Some("arn:aws:s3:::logs")
        );
        assert_eq!(
            build_arn("AWS::EC2::Instance", Some("i-1"), None, "cn-north-1", "1").as_deref(),
            Some("arn:aws-cn:ec2:cn-north-1:1:instance/i-1")
        );
        // The field the recipe needs is missing or empty, or the type has no recipe.
        assert_eq!(
            build_arn("AWS::S3::Bucket", Some("logs"), None, "eu-west-1", "1"),
            None
        );
        assert_eq!(
            build_arn("AWS::EC2::Volume", Some(""), None, "eu-west-1", "1"),
            None
        );
        assert_eq!(
            build_arn("AWS::SNS::Topic", Some("t"), Some("t"), "eu-west-1", "1"),
            None
        );
        assert_eq!(
            build_arn("AWS::Unknown::Thing", Some("t"), Some("t"), "r", "1"),
            None
        );
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn filters_mean_what_the_tagging_api_means() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches_filters("ec2:instance", &[]));
        assert!(matches_filters("ec2:instance", &f(&["ec2"])));
        assert!(matches_filters("ec2:volume", &f(&["s3", "ec2"])));
        assert!(!matches_filters("ec2:volume", &f(&["ec2:instance"])));
        assert!(matches_filters("ec2:instance", &f(&["ec2:instance"])));
        assert!(!matches_filters("ec2x:instance", &f(&["ec2"])));
        assert!(!matches_filters("s3:bucket", &f(&["ec2"])));
    }

    #[test]
    fn type_filters_become_a_where_condition_when_every_filter_is_known() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(type_condition(&[]), None);
        assert_eq!(
            type_condition(&f(&["ec2:instance"])).as_deref(),
            Some("resourceType IN ('AWS::EC2::Instance')")
        );
        // Both load balancer generations have the same canonical type.
        assert_eq!(
            type_condition(&f(&["elasticloadbalancing:loadbalancer", "s3:bucket"])).as_deref(),
            Some(
                "resourceType IN ('AWS::ElasticLoadBalancing::LoadBalancer', \
                 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'AWS::S3::Bucket')"
            )
        );
        assert_eq!(
            type_condition(&f(&["ec2"])).as_deref(),
            Some("resourceType LIKE 'AWS::EC2::%'")
        );
        assert_eq!(
            type_condition(&f(&["elasticloadbalancing", "dynamodb:table"])).as_deref(),
            Some(
                "(resourceType IN ('AWS::DynamoDB::Table') OR \
                 resourceType LIKE 'AWS::ElasticLoadBalancing::%' OR \
                 resourceType LIKE 'AWS::ElasticLoadBalancingV2::%')"
            )
        );
        // One unknown filter: every type is queried, the filter applies to the results.
        assert_eq!(type_condition(&f(&["ec2", "glacier"])), None);
        assert_eq!(type_condition(&f(&["ec2:fleet"])), None);
    }

    #[test]
    fn config_records_are_not_resources() {
        assert!(is_config_record("AWS::Config::ResourceCompliance"));
        assert!(is_config_record("AWS::Config::ConformancePackCompliance"));
        assert!(!is_config_record("AWS::Config::ConfigRule"));
        assert!(!is_config_record("AWS::EC2::Instance"));
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote("it's"), "'it''s'");
        assert_eq!(quoted_list(&["a", "b"]), "'a', 'b'");
    }
}
