//! Tagwarden's canonical resource types (`service:type`, from ARNs) → Cloud Custodian resource
//! names. Taken from the resources c7n 0.9.53 registers (their service and ARN type), so a
//! generated policy names a resource `custodian validate` knows; a type not listed here is
//! reported as unmapped rather than guessed.

/// One Custodian resource and the canonical type it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct C7nType {
    pub canonical: &'static str,
    pub resource: &'static str,
    /// Whether Custodian registers `mark-for-op` for this resource (not every one does).
    pub mark_for_op: bool,
}

const fn t(canonical: &'static str, resource: &'static str) -> C7nType {
    C7nType {
        canonical,
        resource,
        mark_for_op: true,
    }
}

/// In the order generated files list them. `elasticloadbalancing:loadbalancer` is covered by
/// two Custodian resources: `aws.app-elb` (application and network) and `aws.elb` (classic).
pub(crate) const C7N_TYPES: &[C7nType] = &[
    t("ec2:instance", "aws.ec2"),
    t("ec2:volume", "aws.ebs"),
    t("ec2:snapshot", "aws.ebs-snapshot"),
    t("ec2:image", "aws.ami"),
    t("ec2:security-group", "aws.security-group"),
    t("ec2:vpc", "aws.vpc"),
    t("ec2:subnet", "aws.subnet"),
    t("ec2:network-interface", "aws.eni"),
    t("ec2:elastic-ip", "aws.elastic-ip"),
    t("ec2:natgateway", "aws.nat-gateway"),
    t("ec2:internet-gateway", "aws.internet-gateway"),
    t("s3:bucket", "aws.s3"),
    t("rds:db", "aws.rds"),
    t("rds:cluster", "aws.rds-cluster"),
    t("rds:snapshot", "aws.rds-snapshot"),
    t("lambda:function", "aws.lambda"),
    t("dynamodb:table", "aws.dynamodb-table"),
    t("elasticloadbalancing:loadbalancer", "aws.app-elb"),
    t("elasticloadbalancing:loadbalancer", "aws.elb"),
    t(
        "elasticloadbalancing:targetgroup",
        "aws.app-elb-target-group",
    ),
    t("elasticache:cluster", "aws.cache-cluster"),
    t("elasticache:replicationgroup", "aws.elasticache-group"),
    t("sqs:queue", "aws.sqs"),
    t("sns:topic", "aws.sns"),
    t("eks:cluster", "aws.eks"),
    t("elasticfilesystem:file-system", "aws.efs"),
    t("logs:log-group", "aws.log-group"),
    t("kms:key", "aws.kms-key"),
    t("ecs:cluster", "aws.ecs"),
    t("ecs:service", "aws.ecs-service"),
    t("ecs:task-definition", "aws.ecs-task-definition"),
    t("ecr:repository", "aws.ecr"),
    C7nType {
        canonical: "states:stateMachine",
        resource: "aws.step-machine",
        mark_for_op: false,
    },
    t("secretsmanager:secret", "aws.secrets-manager"),
    t("cloudfront:distribution", "aws.distribution"),
    t("apigateway:restapis", "aws.rest-api"),
    t("kinesis:stream", "aws.kinesis"),
    t("firehose:deliverystream", "aws.firehose"),
    t("redshift:cluster", "aws.redshift"),
    t("es:domain", "aws.elasticsearch"),
    t("iam:role", "aws.iam-role"),
    t("iam:user", "aws.iam-user"),
    t("cloudtrail:trail", "aws.cloudtrail"),
    t("acm:certificate", "aws.acm-certificate"),
    t("autoscaling:autoScalingGroup", "aws.asg"),
    t("sagemaker:endpoint", "aws.sagemaker-endpoint"),
    t("sagemaker:notebook-instance", "aws.sagemaker-notebook"),
];

/// The Custodian resources of a canonical type (types compare ignoring case, as `applies_to`
/// does).
#[cfg(test)]
pub(crate) fn resources_for(canonical: &str) -> impl Iterator<Item = &'static C7nType> + '_ {
    C7N_TYPES
        .iter()
        .filter(move |t| t.canonical.eq_ignore_ascii_case(canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for t in C7N_TYPES {
            assert!(seen.insert(t.resource), "{} listed twice", t.resource);
            assert!(t.resource.starts_with("aws."), "{}", t.resource);
            assert!(t.canonical.contains(':'), "{}", t.canonical);
        }
        assert_eq!(
            resources_for("elasticloadbalancing:loadbalancer")
                .map(|t| t.resource)
                .collect::<Vec<_>>(),
            vec!["aws.app-elb", "aws.elb"]
        );
        assert_eq!(
            resources_for("STATES:statemachine")
                .map(|t| (t.resource, t.mark_for_op))
                .collect::<Vec<_>>(),
            vec![("aws.step-machine", false)]
        );
        assert_eq!(resources_for("ec2:transit-gateway").count(), 0);
    }
}
