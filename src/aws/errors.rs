//! Turning SDK errors into one line that says what failed and what to do. Raw upstream bodies
//! (HTML error pages, stack traces, request ids) are never passed through.

use aws_sdk_resourcegroupstagging::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// One line: `<operation> in <where> failed: <why>; <what to do>`.
pub(crate) fn summarise_sdk_error<E, R>(
    operation: &str,
    place: &str,
    err: &SdkError<E, R>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let why = match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("an unnamed error");
            let advice = advice_for(operation, code);
            format!("AWS answered {code}; {advice}")
        }
        SdkError::TimeoutError(_) => {
            "AWS did not answer in time; retry later or check network access".to_string()
        }
        SdkError::DispatchFailure(d) => {
            let text = format!("{}", DisplayErrorContext(err)).to_lowercase();
            if text.contains("credential") {
                no_credentials()
            } else if d.is_timeout() {
                "the AWS endpoint did not answer in time; check network access".to_string()
            } else {
                "cannot reach the AWS endpoint; check network access, proxy settings and \
                 AWS_ENDPOINT_URL"
                    .to_string()
            }
        }
        SdkError::ResponseError(_) => {
            "AWS returned a response that could not be read (often an HTTP error page from a \
             proxy or an endpoint that does not implement this operation)"
                .to_string()
        }
        SdkError::ConstructionFailure(_) => {
            let text = format!("{}", DisplayErrorContext(err)).to_lowercase();
            if text.contains("credential") {
                no_credentials()
            } else if text.contains("region") {
                "no AWS region is configured; set AWS_REGION or pass --regions".to_string()
            } else {
                "the request could not be built; check the AWS configuration".to_string()
            }
        }
        _ => "unexpected AWS SDK error; run with TAGWARDEN_LOG=debug for details".to_string(),
    };
    tracing::debug!(operation, place, error = %DisplayErrorContext(err), "AWS call failed");
    format!("{operation} in {place} failed: {why}")
}

fn no_credentials() -> String {
    "no AWS credentials were found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY"
        .to_string()
}

/// Advice that depends on the operation as well as the code (the multi-account scan's calls).
fn advice_for(operation: &str, code: &str) -> &'static str {
    match (operation, code) {
        ("AssumeRole", "AccessDenied" | "AccessDeniedException") => {
            "the role does not exist in that account, or its trust policy does not let this \
             identity assume it (this identity needs sts:AssumeRole on the role, and the role's \
             trust policy must name this account or principal, with the external id if it \
             requires one)"
        }
        ("ListAccounts", "AccessDeniedException" | "AccessDenied") => {
            "call from the organization's management account or a delegated administrator, \
             with organizations:ListAccounts"
        }
        (_, "AWSOrganizationsNotInUseException") => {
            "this account is not in an organization; list the accounts with --aws-accounts FILE"
        }
        _ => advice_for_code(code),
    }
}

fn advice_for_code(code: &str) -> &'static str {
    match code {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            "grant this identity the permission for the operation (tag:GetResources for scans, \
             config:SelectResourceConfig or config:SelectAggregateResourceConfig with \
             --aws-coverage config, ce:GetCostAndUsage for costs)"
        }
        "NoSuchConfigurationAggregatorException" => {
            "no AWS Config aggregator has this name in this account and region: check \
             --aws-config-aggregator (aws configservice describe-configuration-aggregators) \
             and set AWS_REGION to the region where the aggregator was created"
        }
        "InvalidExpressionException" => {
            "AWS Config refused the query; check --aws-resource-types and --regions"
        }
        "InvalidNextTokenException" | "InvalidLimitException" => {
            "AWS Config refused a page request; run the scan again"
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => {
            "AWS is throttling this account; retries were exhausted, try again later"
        }
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => {
            "the credentials were rejected or have expired; refresh them (e.g. aws sso login)"
        }
        "InvalidParameterException" | "ValidationException" => {
            "a parameter was refused; check --regions and --aws-resource-types"
        }
        "PaginationTokenExpiredException" => "the scan took too long between pages; run it again",
        _ => "see the AWS documentation for this code",
    }
}
