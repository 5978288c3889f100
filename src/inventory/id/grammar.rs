//! The grammar a resource id given by a caller must follow: an ARN, an Azure resource id or a
//! GCP full resource name. The input guard refuses tool arguments that fail it (its refusal
//! adds "is not a resource id" and this module's reason), and the sanitizer keeps words that
//! pass it whole.
//!
//! Stricter than the parsers beside it, on purpose: the Azure prefix must be exactly
//! `/subscriptions/` (the Azure parser accepts any case, as exports write it), ARN partition,
//! service and region are lower-case tokens and the account is empty, `aws` or 12 digits.

/// Checks the grammar of a resource id: an ARN, an Azure resource id or a GCP full resource
/// name.
pub(crate) fn check(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    if id.starts_with("arn:") {
        return arn(id);
    }
    if let Some(rest) = id.strip_prefix("/subscriptions/") {
        let mut parts = rest.split('/');
        return match parts.next() {
            Some(sub) if !sub.is_empty() && parts.next().is_some() => Ok(()),
            _ => Err("an Azure id needs /subscriptions/<id>/ and more"),
        };
    }
    if let Some(rest) = id.strip_prefix("//") {
        let host = rest.split('/').next().unwrap_or("");
        return if host.ends_with(".googleapis.com") && rest.len() > host.len() + 1 {
            Ok(())
        } else {
            Err("a GCP name is //<service>.googleapis.com/<path>")
        };
    }
    Err("it is not an ARN, an Azure id or a GCP name")
}

fn arn(id: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = id.splitn(6, ':').collect();
    if parts.len() != 6 {
        return Err("an ARN has six parts: arn:partition:service:region:account:resource");
    }
    let (partition, service, region, account, resource) =
        (parts[1], parts[2], parts[3], parts[4], parts[5]);
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !partition.starts_with("aws") || !token(partition) {
        return Err("its partition is not aws, aws-cn, aws-us-gov, ...");
    }
    if !token(service) {
        return Err("its service is not lower-case letters, digits and hyphens");
    }
    if !region.is_empty() && !token(region) {
        return Err("its region is not a region name");
    }
    // Empty for global resources (S3), `aws` for AWS-managed ones, else 12 digits.
    let twelve_digits = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    if !(account.is_empty() || account == "aws" || twelve_digits) {
        return Err("its account is not 12 digits");
    }
    if resource.is_empty() {
        return Err("its resource part is empty");
    }
    Ok(())
}
