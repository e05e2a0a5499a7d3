//! Token-service requests and answers (the distribution token spec and its OAuth2 variant),
//! and the scopes they are asked for.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Deserializer};

use super::AuthError;

/// Token lifetime when the token service does not say, per the distribution token spec.
const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 60;

/// Tokens are never cached for longer than this, whatever the token service says.
const MAX_TOKEN_LIFETIME_SECS: u64 = 60 * 60;

/// Subtracted from a token's lifetime so that it is not used in the last seconds of its life,
/// when clock skew and request latency could make it expire in flight.
const TOKEN_SAFETY_MARGIN_SECS: u64 = 10;

/// The token-service URL for `realm`: `realm?service=...&scope=...&scope=...`, each value
/// percent-encoded; a query already in the realm is kept.
pub fn token_request_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
) -> Result<reqwest::Url, AuthError> {
    let mut url = reqwest::Url::parse(realm).map_err(|e| AuthError::InvalidRealm {
        realm: realm.to_owned(),
        source: Box::new(e),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(AuthError::UnsupportedRealmScheme {
            realm: realm.to_owned(),
            scheme: url.scheme().to_owned(),
        });
    }
    let service = service.filter(|s| !s.is_empty());
    let scopes = scopes.iter().filter(|s| !s.is_empty());
    if service.is_some() || scopes.clone().next().is_some() {
        // Only when there is something to add: `query_pairs_mut` leaves a bare `?` otherwise.
        let mut query = url.query_pairs_mut();
        if let Some(service) = service {
            query.append_pair("service", service);
        }
        for scope in scopes {
            query.append_pair("scope", scope);
        }
    }
    Ok(url)
}

/// A token service's answer (distribution token spec, and its OAuth2 variant).
///
/// `Debug` never prints the tokens: they are [`SecretString`]s.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenResponse {
    /// The bearer token.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// The same token under its OAuth2 name; some services send only this one.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// Seconds the token stays valid after `issued_at`; 60 when absent.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub expires_in: Option<i64>,
    /// When the token was issued (RFC 3339). Not used for [`lifetime`](Self::lifetime):
    /// comparing it with the local clock would only import the server's clock skew.
    #[serde(default)]
    pub issued_at: Option<String>,
}

/// Accepts any JSON number of seconds (some services send `300.0`).
fn lenient_seconds<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    let seconds = Option::<f64>::deserialize(deserializer)?;
    // `as` saturates at the i64 bounds and maps NaN to 0; both are fine for a lifetime.
    Ok(seconds.map(|s| s as i64))
}

impl TokenResponse {
    /// The bearer token: `token`, else `access_token`; `None` when neither is set.
    pub fn bearer(&self) -> Option<&str> {
        [&self.token, &self.access_token]
            .into_iter()
            .filter_map(|t| t.as_ref().map(|t| t.expose_secret()))
            .find(|t| !t.is_empty())
    }

    /// How long the token may be reused: `expires_in` (60 s when absent), at most an hour,
    /// less a safety margin of ten seconds; zero when the service says it is already expired.
    pub fn lifetime(&self) -> Duration {
        let seconds = match self.expires_in {
            None => DEFAULT_TOKEN_LIFETIME_SECS,
            Some(s) => u64::try_from(s).unwrap_or(0).min(MAX_TOKEN_LIFETIME_SECS),
        };
        Duration::from_secs(seconds.saturating_sub(TOKEN_SAFETY_MARGIN_SECS))
    }
}

/// What a request needs to do to a repository; it decides the token scope asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read: manifests, blobs, tags, referrers.
    Pull,
    /// Write as well (uploads, manifest pushes, deletes); a push token also serves pulls.
    Push,
}

/// The token scope for `repository`: `repository:<repo>:pull`, or `...:pull,push`.
pub fn scope_for(repository: &str, access: Access) -> String {
    let actions = match access {
        Access::Pull => "pull",
        Access::Push => "pull,push",
    };
    format!("repository:{repository}:{actions}")
}
