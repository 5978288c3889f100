//! Resource ids: one home for what an id says and whether a string is one.
//!
//! Three id families reach tagwarden: AWS ARNs (`arn`), Azure resource ids (`azure`) and GCP
//! full resource names (`gcp`). Code that reads ids a provider wrote (inventories, FOCUS cost
//! files) uses the parsers and [`facts`]; the input guard that checks ids sent as tool
//! arguments, and the sanitizer that keeps such ids whole in answers, use [`grammar::check`].
//!
//! The two are deliberately not one rule. The parsers are lenient about what exports write (an
//! Azure prefix in any case, any ARN partition); the grammar is strict about what a caller may
//! send (the Azure prefix exactly `/subscriptions/`, ARN parts in lower case, an `aws*`
//! partition). Aligning them would change which calls are refused.

pub(crate) mod arn;
pub(crate) mod azure;
pub(crate) mod gcp;
pub(crate) mod grammar;

#[cfg(test)]
mod tests;

use compact_str::CompactString;

use super::Provider;

/// What a resource id says about the resource (ARN, Azure or GCP id); empty for other ids.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct IdFacts<'a> {
    pub provider: Option<Provider>,
    pub resource_type: CompactString,
    pub name: &'a str,
    pub account: &'a str,
    pub region: &'a str,
}

/// The facts of `id`, read as an ARN, else an Azure id, else a GCP name; empty otherwise.
pub(crate) fn facts(id: &str) -> IdFacts<'_> {
    if let Some(arn) = arn::parse(id) {
        return IdFacts {
            provider: Some(Provider::Aws),
            resource_type: arn.canonical_type(),
            name: arn.name(),
            account: arn.account,
            region: arn.region,
        };
    }
    if let Some(azure) = azure::AzureId::parse(id) {
        return IdFacts {
            provider: Some(Provider::Azure),
            resource_type: azure.resource_type,
            name: azure.name,
            account: azure.subscription,
            region: "",
        };
    }
    if let Some(gcp) = gcp::GcpName::parse(id) {
        return IdFacts {
            provider: Some(Provider::Gcp),
            resource_type: gcp.resource_type,
            name: gcp.name,
            account: gcp.project,
            region: gcp.region,
        };
    }
    IdFacts::default()
}
