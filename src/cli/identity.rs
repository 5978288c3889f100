//! Who may call `serve --http` beyond the `--api-tokens` list: a tokens file (one
//! `name:role:token` per line) and an OAuth 2.1 authorization server whose access tokens are
//! accepted. Turned into the transport's `HttpOptions` fields here.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::server::http::{OAuthOptions, read_tokens_file};
use crate::util::parse_duration;

/// Identities of HTTP callers beyond the token lists.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// A file of API tokens, one `name:role:token` per line (role viewer, approver or admin;
    /// `#` comments and blank lines skipped), added to --api-tokens. Refused when every user
    /// of the machine may read it (chmod 600). Read at start.
    #[arg(long, env = "TAGWARDEN_API_TOKENS_FILE", value_name = "FILE")]
    pub api_tokens_file: Option<PathBuf>,
    /// Accept OAuth 2.1 access tokens (JWT) of this authorization server: its issuer
    /// identifier, the exact `iss` of its tokens (https; http only on loopback). Needs
    /// --oauth-audience.
    #[arg(
        long,
        env = "TAGWARDEN_OAUTH_ISSUER",
        value_name = "URL",
        requires = "oauth_audience"
    )]
    pub oauth_issuer: Option<String>,
    /// This server's canonical MCP URI as clients reach it (e.g.
    /// https://tagwarden.example.com/mcp, no trailing slash): tokens must carry exactly it as
    /// `aud`; the protected-resource metadata names it.
    #[arg(
        long,
        env = "TAGWARDEN_OAUTH_AUDIENCE",
        value_name = "URI",
        requires = "oauth_issuer"
    )]
    pub oauth_audience: Option<String>,
    /// The issuer's JWKS (signing keys). Default: the `jwks_uri` of its metadata
    /// (/.well-known/oauth-authorization-server, then /.well-known/openid-configuration), else
    /// ISSUER/.well-known/jwks.json.
    #[arg(
        long,
        env = "TAGWARDEN_OAUTH_JWKS_URL",
        value_name = "URL",
        requires = "oauth_issuer"
    )]
    pub oauth_jwks_url: Option<String>,
    /// A token signed with an unknown key id makes the server fetch the keys again, at most
    /// this often (at least 1s).
    #[arg(long, env = "TAGWARDEN_OAUTH_JWKS_MIN_REFETCH", default_value = "5m", value_parser = parse_duration)]
    pub oauth_jwks_min_refetch: Duration,
}

impl IdentityArgs {
    /// The API token entries: the flag's, then the file's.
    pub(crate) fn api_tokens(&self, from_flag: Vec<String>) -> anyhow::Result<Vec<String>> {
        let mut tokens = crate::server::http::parse_tokens(from_flag)?;
        if let Some(path) = &self.api_tokens_file {
            let from_file = read_tokens_file(path)?;
            tracing::info!(
                tokens = from_file.len(),
                file = %path.display(),
                "API tokens read from the tokens file"
            );
            tokens.extend(from_file);
        }
        Ok(tokens)
    }

    /// The OAuth settings, when an issuer is given.
    pub(crate) fn oauth(&self) -> Option<OAuthOptions> {
        let (issuer, audience) = (self.oauth_issuer.clone()?, self.oauth_audience.clone()?);
        Some(OAuthOptions {
            jwks_url: self.oauth_jwks_url.clone(),
            min_refetch: self.oauth_jwks_min_refetch,
            ..OAuthOptions::new(issuer, audience)
        })
    }
}
