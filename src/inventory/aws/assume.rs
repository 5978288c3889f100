//! Credentials of a role in another account, for the clients that scan it: an SDK
//! configuration whose credentials provider assumes the role (or a chain of roles) with
//! `sts:AssumeRole`, wrapped in a new `SdkConfig` so the SDK's identity cache applies.
//!
//! Why not `aws_config::sts::AssumeRoleProvider` itself: its STS client is built from an
//! `SdkConfig`, which cannot carry an interceptor, so its calls would escape the `CallCounter`
//! that makes every answer's `api_calls` exact; and it re-calls STS on every failed resolution.
//! This provider makes the same `AssumeRole` call with a counted STS client and keeps the
//! outcome: one call per account and scan while the session lasts (a refresh 5 minutes before
//! expiry), and a refusal is remembered, so the account's other regions do not ask again and
//! the account is reported once with STS's reason.
//!
//! The role is assumed lazily, on the first request that needs it: when every part of an
//! account comes from the shared cache, no `AssumeRole` is made at all.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{
    ProvideCredentials, Result as CredentialsResult, SharedCredentialsProvider, future,
};
use aws_sdk_sts::config::{IdentityCache, Region};
use tokio::sync::Mutex;

use crate::aws::{CallCounter, summarise_sdk_error};

/// `RoleSessionName` of every session, so CloudTrail shows who read the account.
const SESSION_NAME: &str = "tagwarden";

/// Credentials are renewed when they have less than this left.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The SDK configuration of one account reached through `roles` (assumed in order; each with
/// the previous one's credentials), and the steps, to ask afterwards whether one was refused.
pub(super) struct RoleChain {
    pub sdk: SdkConfig,
    steps: Vec<AssumedRole>,
}

impl RoleChain {
    /// Builds the chain; nothing is called until a client needs credentials. `sts_region` is
    /// used when `base` has no region (STS endpoints are regional).
    pub(super) fn new(
        base: &SdkConfig,
        roles: &[String],
        external_id: Option<&str>,
        counter: &CallCounter,
        sts_region: &str,
        load_timeout: Duration,
    ) -> RoleChain {
        // The account's own identity cache, with time for AssumeRole and its retries (the
        // default cache gives a credentials provider 5 s).
        let mut sdk = base
            .to_builder()
            .identity_cache(IdentityCache::lazy().load_timeout(load_timeout).build())
            .build();
        let mut steps = Vec::with_capacity(roles.len());
        for role_arn in roles {
            let mut sts = aws_sdk_sts::config::Builder::from(&sdk).interceptor(counter.clone());
            if sdk.region().is_none() {
                sts = sts.region(Region::new(sts_region.to_string()));
            }
            let step = AssumedRole {
                inner: Arc::new(Step {
                    sts: aws_sdk_sts::Client::from_conf(sts.build()),
                    role_arn: role_arn.clone(),
                    external_id: external_id.map(str::to_string),
                    state: Mutex::new(State::NotYet),
                }),
            };
            // A new provider is a new partition of the (shared) identity cache.
            sdk = sdk
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(step.clone()))
                .build();
            steps.push(step);
        }
        RoleChain { sdk, steps }
    }

    /// Why the account could not be entered: the first refused step's reason, once a client
    /// has asked for credentials. None when every step that was tried succeeded.
    pub(super) async fn failure(&self) -> Option<String> {
        for step in &self.steps {
            if let State::Failed(reason) = &*step.inner.state.lock().await {
                return Some(reason.clone());
            }
        }
        None
    }
}

/// One role of a chain, as a credentials provider.
#[derive(Debug, Clone)]
struct AssumedRole {
    inner: Arc<Step>,
}

#[derive(Debug)]
struct Step {
    sts: aws_sdk_sts::Client,
    role_arn: String,
    external_id: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    NotYet,
    Have(Credentials),
    Failed(String),
}

impl AssumedRole {
    async fn credentials(&self) -> CredentialsResult {
        let step = &self.inner;
        // Held across the call: concurrent requests of the account wait for one AssumeRole.
        let mut state = step.state.lock().await;
        match &*state {
            State::Have(c)
                if c.expiry()
                    .is_none_or(|e| e > SystemTime::now() + REFRESH_BEFORE) =>
            {
                return Ok(c.clone());
            }
            State::Failed(reason) => return Err(CredentialsError::provider_error(reason.clone())),
            _ => {}
        }
        let answer = step
            .sts
            .assume_role()
            .role_arn(&step.role_arn)
            .role_session_name(SESSION_NAME)
            .set_external_id(step.external_id.clone())
            .send()
            .await;
        let credentials = match answer {
            Ok(out) => out.credentials().map(|c| {
                Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_string()),
                    SystemTime::try_from(*c.expiration()).ok(),
                    "tagwarden-assume-role",
                )
            }),
            Err(e) => {
                let reason = summarise_sdk_error("AssumeRole", &step.role_arn, &e);
                *state = State::Failed(reason.clone());
                return Err(CredentialsError::provider_error(reason));
            }
        };
        match credentials {
            Some(c) => {
                *state = State::Have(c.clone());
                Ok(c)
            }
            None => {
                let reason = format!("AssumeRole in {} returned no credentials", step.role_arn);
                *state = State::Failed(reason.clone());
                Err(CredentialsError::provider_error(reason))
            }
        }
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}
