//! `tagwarden policy import` and `policy export`: AWS Organizations tag policies in, AWS tag
//! policies and Cloud Custodian files out. The conversions are the pure ones in
//! `policy::interchange`; this module reads files, calls AWS for an effective policy, writes
//! the result (stdout or `--out`) and prints the lossiness report on stderr.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;

use crate::aws::AwsTuning;
use crate::policy::interchange::{
    self, CustodianAction, CustodianOptions, LossItem, export_aws_tag_policy, generate_custodian,
    import_aws_tag_policy,
};

/// Where the AWS tag policy comes from.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("from").required(true).args(["aws_file", "aws_account"])))]
pub struct PolicyImportArgs {
    /// A tag policy file: a policy document (`{"tags": ...}`), or the JSON of `aws
    /// organizations describe-effective-policy --policy-type TAG_POLICY` or `describe-policy`.
    #[arg(long, value_name = "FILE")]
    pub aws_file: Option<PathBuf>,
    /// Read the effective tag policy of this account from AWS Organizations
    /// (DescribeEffectivePolicy; the standard AWS configuration and credentials apply).
    #[arg(long, value_name = "ACCOUNT_ID", value_parser = parse_account)]
    pub aws_account: Option<String>,
    /// Write the Tagwarden policy here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Attempts per AWS request.
    #[arg(long, env = "TAGWARDEN_AWS_MAX_ATTEMPTS", default_value_t = 6)]
    pub aws_max_attempts: u32,
}

/// What to export the policy in force as.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["aws", "custodian"])))]
pub struct PolicyExportArgs {
    /// Write an AWS Organizations tag policy (`@@assign` only).
    #[arg(long)]
    pub aws: bool,
    /// Write Cloud Custodian policies (YAML), one per resource type.
    #[arg(long)]
    pub custodian: bool,
    /// Policy file (default: policies/tagging_policy.json if present, else the built-in policy).
    #[arg(long, env = "TAGWARDEN_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Custodian actions on non-compliant resources (comma-separated). Default: none (the
    /// policies only report).
    #[arg(long, value_enum, value_delimiter = ',', requires = "custodian")]
    pub actions: Vec<ActionArg>,
    /// Custodian: only these resource types (canonical types or patterns such as `rds:*`,
    /// comma-separated). Default: every type the policy judges that Custodian knows.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "TYPES",
        requires = "custodian"
    )]
    pub resource_types: Vec<String>,
    /// Custodian mark-for-op: days before the marked notify.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=365), requires = "custodian")]
    pub mark_days: u32,
    /// Custodian notify: recipients (c7n-mailer addresses, or `resource-owner`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "resource-owner",
        requires = "custodian"
    )]
    pub notify_to: Vec<String>,
    /// Custodian notify: the SQS queue URL c7n-mailer reads (required with notify).
    #[arg(long, value_name = "URL", requires = "custodian")]
    pub notify_queue: Option<String>,
    /// Custodian: the first part of every policy name.
    #[arg(long, default_value = "tagwarden", requires = "custodian")]
    pub name_prefix: String,
}

/// A Custodian action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// Tag the resource for a notify after --mark-days.
    MarkForOp,
    /// Send a message through an SQS queue (c7n-mailer).
    Notify,
    /// Tag the resource `tagwarden_compliance=non-compliant`.
    Tag,
}

impl From<ActionArg> for CustodianAction {
    fn from(a: ActionArg) -> Self {
        match a {
            ActionArg::MarkForOp => CustodianAction::MarkForOp,
            ActionArg::Notify => CustodianAction::Notify,
            ActionArg::Tag => CustodianAction::Tag,
        }
    }
}

fn parse_account(s: &str) -> Result<String, String> {
    if s.len() == 12 && s.chars().all(|c| c.is_ascii_digit()) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a 12-digit AWS account id"))
    }
}

/// `policy import`: prints the Tagwarden policy; the lossiness goes to stderr.
pub(super) async fn import(args: &PolicyImportArgs) -> anyhow::Result<u8> {
    let (text, from) = match (&args.aws_file, &args.aws_account) {
        (Some(file), _) => (
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?,
            crate::inventory::file::display_name(file),
        ),
        (None, Some(account)) => {
            let tuning = AwsTuning {
                max_attempts: args.aws_max_attempts.max(1),
                ..AwsTuning::default()
            };
            let envelope =
                crate::aws::organizations::effective_tag_policy(&tuning, Some(account.as_str()))
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
            (
                envelope.to_string(),
                format!("the effective tag policy of {account}"),
            )
        }
        (None, None) => anyhow::bail!("give --aws-file FILE or --aws-account ID"),
    };
    let imported = match import_aws_tag_policy(&text) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("tagwarden: {from} is not a tag policy Tagwarden can read: {e}");
            return Ok(1);
        }
    };
    let json = serde_json::to_string_pretty(&imported.policy)? + "\n";
    write_out(args.out.as_deref(), &json)?;
    eprintln!(
        "tagwarden: imported {} tag policy keys from {from}: {} required, {} checked when present",
        imported.keys,
        imported.policy.required_tags.len(),
        imported.policy.optional_tags.len(),
    );
    report(&imported.lossiness);
    Ok(0)
}

/// `policy export --aws | --custodian`.
pub(super) fn export(args: &PolicyExportArgs) -> anyhow::Result<u8> {
    let holder = crate::app::PolicyHolder::open(args.policy.as_deref())
        .map_err(|e| anyhow::anyhow!("cannot use the policy: {e}"))?;
    let policy = holder.current();
    let source = holder.source().display();
    if args.aws {
        let export = export_aws_tag_policy(&policy);
        let json = serde_json::to_string_pretty(&export.document)? + "\n";
        write_out(args.out.as_deref(), &json)?;
        eprintln!(
            "tagwarden: exported {} keys of {source} as an AWS tag policy",
            export.keys
        );
        report(&export.lossiness);
        return Ok(0);
    }
    let options = CustodianOptions {
        actions: args.actions.iter().map(|a| (*a).into()).collect(),
        resource_types: args.resource_types.clone(),
        mark_days: args.mark_days,
        notify_to: args.notify_to.clone(),
        notify_queue: args.notify_queue.clone(),
        name_prefix: args.name_prefix.clone(),
    };
    let export = match generate_custodian(&policy, &options) {
        Ok(e) => e,
        Err(e) => {
            let flag = match &e {
                interchange::InterchangeError::Invalid { path, .. } => {
                    format!(" (--{})", path.replace('_', "-"))
                }
                _ => String::new(),
            };
            eprintln!("tagwarden: cannot generate the Custodian policies{flag}: {e}");
            return Ok(1);
        }
    };
    write_out(args.out.as_deref(), &export.yaml)?;
    eprintln!(
        "tagwarden: wrote {} Cloud Custodian policies for {source}",
        export.policies.len()
    );
    if !export.unmapped_types.is_empty() {
        eprintln!(
            "tagwarden: no Custodian resource is mapped for: {}",
            export.unmapped_types.join(", ")
        );
    }
    report(&export.lossiness);
    Ok(0)
}

fn write_out(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

fn report(loss: &[LossItem]) {
    if loss.is_empty() {
        eprintln!("tagwarden: everything was carried over");
        return;
    }
    eprintln!("tagwarden: {} items not carried over exactly:", loss.len());
    for item in loss {
        eprintln!("  {}", item.line());
    }
}
