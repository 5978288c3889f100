//! ARNs: parsing, canonical resource types (`service:kind`) and display names.
//!
//! One generic rule covers almost every service (`<kind>/<id>` or `<kind>:<id>` after the
//! account), so no per-service fetcher is needed; the few services whose ARNs carry no kind
//! (S3 buckets, SNS topics, SQS queues) are named explicitly.

use compact_str::{CompactString, format_compact};

use crate::inventory::{Attrs, Interner, Provider, Resource, Tags, normalise_tags};

/// The parts of `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

pub(crate) fn parse(arn: &str) -> Option<Arn<'_>> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    if partition.is_empty() || service.is_empty() || resource.is_empty() {
        return None;
    }
    Some(Arn {
        partition,
        service,
        region,
        account,
        resource,
    })
}

impl<'a> Arn<'a> {
    /// `(kind, rest)`: the resource kind and the id part after it.
    fn kind_and_rest(&self) -> (&'a str, &'a str) {
        let r = self.resource.trim_start_matches('/');
        match self.service {
            "s3" if !r.contains('/') => ("bucket", r),
            "sns" if !r.contains(':') => ("topic", r),
            "sns" => ("subscription", r),
            "sqs" => ("queue", r),
            _ => match r.find(['/', ':']) {
                Some(at) => (&r[..at], &r[at + 1..]),
                None => (r, ""),
            },
        }
    }

    /// Canonical type, e.g. `ec2:instance`, `s3:bucket`, `rds:db`.
    pub(crate) fn canonical_type(&self) -> CompactString {
        let (kind, _) = self.kind_and_rest();
        format_compact!("{}:{}", self.service, kind)
    }

    /// A readable name from the ARN (used when the resource has no `Name` tag).
    pub(crate) fn name(&self) -> &'a str {
        let (kind, rest) = self.kind_and_rest();
        if rest.is_empty() {
            return kind;
        }
        match self.service {
            // loadbalancer/app/<name>/<id>, targetgroup/<name>/<id>
            "elasticloadbalancing" => {
                let segments: Vec<&str> = rest.split('/').collect();
                match kind {
                    "loadbalancer" if segments.len() >= 2 => segments[1],
                    _ => segments[0],
                }
            }
            // service/<cluster>/<service>, task/<cluster>/<id>
            "ecs" => rest.rsplit('/').next().unwrap_or(rest),
            // function:<name>[:<alias>]
            "lambda" => rest.split(':').next().unwrap_or(rest),
            _ => rest,
        }
    }
}

/// Builds a resource from an ARN and its tags, as the Tagging API returns them.
///
/// `scan_region` is used for ARNs without a region (S3); `fallback_account` for ARNs without an
/// account. Returns `None` for a string that is not an ARN. For one resource; readers of many
/// use `resource_from_arn_in` with one interner.
pub(crate) fn resource_from_arn(
    id: &str,
    tags: Tags,
    scan_region: &str,
    fallback_account: &str,
) -> Option<Resource> {
    resource_from_arn_in(
        &mut Interner::default(),
        id,
        tags,
        scan_region,
        fallback_account,
    )
}

/// `resource_from_arn`, with the account, region and type taken from `texts` (readers pass
/// their tags through the same interner).
pub(crate) fn resource_from_arn_in(
    texts: &mut Interner,
    id: &str,
    tags: Tags,
    scan_region: &str,
    fallback_account: &str,
) -> Option<Resource> {
    let arn = parse(id)?;
    let tags = normalise_tags(tags);
    let name = tags
        .iter()
        .find(|(k, v)| k == "Name" && !v.is_empty())
        .map_or_else(|| arn.name().into(), |(_, v)| v.clone());
    let region = if arn.region.is_empty() {
        scan_region
    } else {
        arn.region
    };
    let account = if arn.account.is_empty() {
        fallback_account
    } else {
        arn.account
    };
    Some(Resource {
        id: id.into(),
        provider: Provider::Aws,
        account: texts.intern(account),
        region: texts.intern(region),
        resource_type: texts.intern(&arn.canonical_type()),
        name,
        tags,
        // The stack and creator are AWS's own tags: `Resource::stack()`/`creator()` read them.
        attributes: Attrs::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(arn: &str) -> String {
        parse(arn).expect("valid arn").canonical_type().to_string()
    }

    fn name(arn: &str) -> String {
        parse(arn).expect("valid arn").name().to_string()
    }

    #[test]
    fn canonical_types() {
        let cases = [
            (
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
                "ec2:instance",
            ),
            (
                "arn:aws:ec2:us-east-1:123456789012:volume/vol-1",
                "ec2:volume",
            ),
            (
                "arn:aws:ec2:us-east-1:123456789012:security-group/sg-1",
                "ec2:security-group",
            ),
            ("arn:aws:s3:::my-bucket", "s3:bucket"),
            ("arn:aws:rds:eu-west-1:123456789012:db:orders", "rds:db"),
            (
                "arn:aws:rds:eu-west-1:123456789012:cluster:orders",
                "rds:cluster",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:settle",
                "lambda:function",
            ),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
                "dynamodb:table",
            ),
            ("arn:aws:sns:us-east-1:123456789012:alerts", "sns:topic"),
            ("arn:aws:sqs:us-east-1:123456789012:jobs", "sqs:queue"),
            (
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
                "elasticloadbalancing:loadbalancer",
            ),
            (
                "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/x",
                "logs:log-group",
            ),
            ("arn:aws:kms:us-east-1:123456789012:key/1234abcd", "kms:key"),
            (
                "arn:aws:ecs:us-east-1:123456789012:service/prod/api",
                "ecs:service",
            ),
            (
                "arn:aws:states:us-east-1:123456789012:stateMachine:flow",
                "states:stateMachine",
            ),
            (
                "arn:aws:apigateway:us-east-1::/restapis/abc",
                "apigateway:restapis",
            ),
            (
                "arn:aws-cn:ec2:cn-north-1:123456789012:instance/i-1",
                "ec2:instance",
            ),
        ];
        for (arn, expected) in cases {
            assert_eq!(ty(arn), expected, "{arn}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(name("arn:aws:s3:::my-bucket"), "my-bucket");
        assert_eq!(
            name("arn:aws:lambda:us-east-1:1:function:settle:live"),
            "settle"
        );
        assert_eq!(
            name("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/50dc"),
            "web"
        );
        assert_eq!(name("arn:aws:ecs:us-east-1:1:service/prod/api"), "api");
        assert_eq!(name("arn:aws:ec2:us-east-1:1:instance/i-0abc"), "i-0abc");
        assert_eq!(name("arn:aws:sns:us-east-1:1:alerts"), "alerts");
    }

    #[test]
    fn not_arns() {
        assert!(parse("i-0abc").is_none());
        assert!(parse("arn:aws").is_none());
        assert!(parse("arn::ec2:r:a:x").is_none());
        assert!(parse("arn:aws:ec2:r:a:").is_none());
    }

    #[test]
    fn resource_uses_name_tag_stack_and_fallbacks() {
        let r = resource_from_arn(
            "arn:aws:s3:::logs",
            vec![
                ("Name".into(), "pretty".into()),
                ("aws:cloudformation:stack-name".into(), "stack-a".into()),
            ],
            "eu-west-1",
            "123456789012",
        )
        .unwrap();
        assert_eq!(r.name, "pretty");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.account, "123456789012");
        assert_eq!(r.stack(), Some("stack-a"));
        assert_eq!(r.resource_type, "s3:bucket");
    }
}
