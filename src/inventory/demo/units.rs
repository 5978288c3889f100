//! What a deployment is made of: one unit (a server and its disk, a function and its logs, a
//! bucket, ...) at a time, each with the tags it should carry.

use super::Rng;
use super::catalog::{Archetype::*, Deployment, FUNCTIONS};
use crate::inventory::{Attributes, Attrs, Provider, Resource, Tags, normalise_tags};

/// One unit of a deployment: a server and its disk, a function and its logs, a bucket, ...;
/// unit 0 also creates the deployment's shared pieces (load balancer, queue, database...).
pub(super) fn make_unit(
    rng: &mut Rng,
    ids: &mut Rng,
    d: &Deployment,
    unit: usize,
) -> Vec<(Resource, Tags)> {
    let mut out = Vec::new();
    let env = d.env.short;
    let base = format!("{}-{env}", d.app);
    let (r, a) = (d.region, d.env.account);
    let mut push = |rng: &mut Rng, id: String, ty: &str, name: String, ec2_name: bool| {
        let clean = clean_tags(rng, d, ty, &name, ec2_name);
        let resource = Resource {
            id: id.into(),
            provider: Provider::Aws,
            account: a.into(),
            region: r.into(),
            resource_type: ty.into(),
            name: name.into(),
            tags: Tags::new(),
            attributes: Attrs::from(Attributes {
                vpc: (!matches!(
                    ty,
                    "s3:bucket"
                        | "sns:topic"
                        | "sqs:queue"
                        | "dynamodb:table"
                        | "kms:key"
                        | "logs:log-group"
                ))
                .then(|| d.vpc.as_str().into()),
                subnet: matches!(
                    ty,
                    "ec2:instance"
                        | "ec2:volume"
                        | "rds:db"
                        | "elasticache:cluster"
                        | "lambda:function"
                )
                .then(|| d.subnet.as_str().into()),
                stack: Some(d.stack.as_str().into()),
                creator: Some(d.creator.into()),
                created_at: Some(arcstr::format!(
                    "2026-{:02}-{:02}",
                    1 + rng.below(10),
                    1 + rng.below(28)
                )),
                alt_ids: Vec::new(),
            }),
        };
        out.push((resource, clean));
    };
    let instance = |rng: &mut Rng,
                    ids: &mut Rng,
                    push: &mut dyn FnMut(&mut Rng, String, &str, String, bool),
                    name: String| {
        push(
            rng,
            format!("arn:aws:ec2:{r}:{a}:instance/i-{}", ids.hex(17)),
            "ec2:instance",
            name.clone(),
            true,
        );
        push(
            rng,
            format!("arn:aws:ec2:{r}:{a}:volume/vol-{}", ids.hex(17)),
            "ec2:volume",
            format!("{name}-root"),
            true,
        );
        if rng.chance(0.25) {
            push(
                rng,
                format!("arn:aws:ec2:{r}:{a}:snapshot/snap-{}", ids.hex(17)),
                "ec2:snapshot",
                format!("{name}-root-backup"),
                true,
            );
        }
    };
    match d.archetype {
        Api | Web => {
            instance(rng, ids, &mut push, format!("{base}-{:02}", unit + 1));
            if unit == 0 {
                push(
                    rng,
                    format!(
                        "arn:aws:elasticloadbalancing:{r}:{a}:loadbalancer/app/{base}/{}",
                        ids.hex(16)
                    ),
                    "elasticloadbalancing:loadbalancer",
                    base.clone(),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:ec2:{r}:{a}:security-group/sg-{}", ids.hex(17)),
                    "ec2:security-group",
                    format!("{base}-sg"),
                    true,
                );
                push(
                    rng,
                    format!("arn:aws:logs:{r}:{a}:log-group:/acme/{}/{env}", d.app),
                    "logs:log-group",
                    format!("/acme/{}/{env}", d.app),
                    false,
                );
                let bucket = format!(
                    "acme-{base}-{}-{}",
                    if d.archetype == Web { "assets" } else { "logs" },
                    d.region_short
                );
                push(
                    rng,
                    format!("arn:aws:s3:::{bucket}"),
                    "s3:bucket",
                    bucket,
                    false,
                );
                if d.archetype == Api {
                    push(
                        rng,
                        format!("arn:aws:rds:{r}:{a}:db:{base}-db"),
                        "rds:db",
                        format!("{base}-db"),
                        false,
                    );
                }
            }
            if unit == 1 && d.archetype == Api {
                push(
                    rng,
                    format!("arn:aws:elasticache:{r}:{a}:cluster:{base}-cache"),
                    "elasticache:cluster",
                    format!("{base}-cache"),
                    false,
                );
            }
        }
        Worker => {
            let verb = FUNCTIONS[unit % FUNCTIONS.len()];
            let suffix = if unit < FUNCTIONS.len() {
                String::new()
            } else {
                format!("-{}", unit / FUNCTIONS.len() + 1)
            };
            let name = format!("{base}-{verb}{suffix}");
            push(
                rng,
                format!("arn:aws:lambda:{r}:{a}:function:{name}"),
                "lambda:function",
                name.clone(),
                false,
            );
            push(
                rng,
                format!("arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{name}"),
                "logs:log-group",
                format!("/aws/lambda/{name}"),
                false,
            );
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:sqs:{r}:{a}:{base}-jobs"),
                    "sqs:queue",
                    format!("{base}-jobs"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:sqs:{r}:{a}:{base}-jobs-dlq"),
                    "sqs:queue",
                    format!("{base}-jobs-dlq"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:sns:{r}:{a}:{base}-events"),
                    "sns:topic",
                    format!("{base}-events"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:dynamodb:{r}:{a}:table/{base}-state"),
                    "dynamodb:table",
                    format!("{base}-state"),
                    false,
                );
            }
        }
        Data => {
            let bucket = format!("acme-{base}-{}-{:02}", d.region_short, unit + 1);
            push(
                rng,
                format!("arn:aws:s3:::{bucket}"),
                "s3:bucket",
                bucket,
                false,
            );
            if unit.is_multiple_of(2) {
                instance(
                    rng,
                    ids,
                    &mut push,
                    format!("{base}-node-{:02}", unit / 2 + 1),
                );
            }
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:rds:{r}:{a}:db:{base}-db"),
                    "rds:db",
                    format!("{base}-db"),
                    false,
                );
                push(
                    rng,
                    format!("arn:aws:dynamodb:{r}:{a}:table/{base}-catalog"),
                    "dynamodb:table",
                    format!("{base}-catalog"),
                    false,
                );
                let key = format!(
                    "{}-{}-{}-{}-{}",
                    ids.hex(8),
                    ids.hex(4),
                    ids.hex(4),
                    ids.hex(4),
                    ids.hex(12)
                );
                push(
                    rng,
                    format!("arn:aws:kms:{r}:{a}:key/{key}"),
                    "kms:key",
                    format!("{base}-key"),
                    false,
                );
            }
        }
        Ml => {
            instance(rng, ids, &mut push, format!("{base}-gpu-{:02}", unit + 1));
            if unit.is_multiple_of(3) {
                let name = format!("{base}-endpoint-{}", unit / 3 + 1);
                push(
                    rng,
                    format!("arn:aws:sagemaker:{r}:{a}:endpoint/{name}"),
                    "sagemaker:endpoint",
                    name,
                    false,
                );
            }
            if unit == 0 {
                let bucket = format!("acme-{base}-models-{}", d.region_short);
                push(
                    rng,
                    format!("arn:aws:s3:::{bucket}"),
                    "s3:bucket",
                    bucket,
                    false,
                );
            }
        }
        Compute => {
            instance(
                rng,
                ids,
                &mut push,
                format!("{base}-runner-{:02}", unit + 1),
            );
            if unit == 0 {
                push(
                    rng,
                    format!("arn:aws:ecs:{r}:{a}:cluster/{base}"),
                    "ecs:cluster",
                    base.clone(),
                    false,
                );
            }
            let svc = format!("{base}-svc-{:02}", unit + 1);
            push(
                rng,
                format!("arn:aws:ecs:{r}:{a}:service/{base}/{svc}"),
                "ecs:service",
                svc,
                false,
            );
        }
    }
    out
}

pub(super) fn is_data_store(ty: &str) -> bool {
    matches!(
        ty,
        "s3:bucket" | "rds:db" | "dynamodb:table" | "elasticache:cluster"
    )
}

/// The tags a resource should carry.
fn clean_tags(rng: &mut Rng, d: &Deployment, ty: &str, name: &str, ec2_name: bool) -> Tags {
    let mut tags: Tags = vec![
        ("Environment".into(), d.env_value.as_str().into()),
        ("CostCenter".into(), d.team.cost_center.into()),
        (
            "Owner".into(),
            arcstr::format!("{}-team@acme.example", d.team.name),
        ),
        ("Application".into(), d.app.into()),
        ("Team".into(), d.team.name.into()),
        (
            "aws:cloudformation:stack-name".into(),
            d.stack.as_str().into(),
        ),
    ];
    if ec2_name {
        tags.push(("Name".into(), name.into()));
    }
    if is_data_store(ty) && d.env.short == "prod" {
        let class = match (d.team.name, d.app) {
            (_, "user-profile") => "restricted",
            ("payments" | "identity", _) => "confidential",
            (_, _) if name.contains("assets") => "public",
            _ => "internal",
        };
        tags.push(("DataClassification".into(), class.into()));
    }
    if matches!(ty, "rds:db" | "ec2:volume" | "dynamodb:table") && rng.chance(0.5) {
        let schedule = if d.env.short == "prod" {
            "daily"
        } else {
            "weekly"
        };
        tags.push(("BackupSchedule".into(), schedule.into()));
    }
    if let Some(p) = d.project {
        tags.push(("Project".into(), p.into()));
    }
    normalise_tags(tags)
}
