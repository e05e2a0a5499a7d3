//! Authorization: the cached token or basic credentials a request carries, and the answer
//! to a registry's `WWW-Authenticate` challenge (basic credentials, or a bearer token from its
//! token service). Credentials go to the registry they are for and to no other (issue 12).

use std::time::Instant;

use base64::Engine as _;
use reqwest::header::{self, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use zeroize::Zeroizing;

use super::{Client, egress, error_chain, read_error_message, read_limited};
use crate::auth::{self, Challenge, Credentials};
use crate::error::RegistryError;

impl Client {
    /// Answers the 401 `response` for `scope`: a token or basic credentials are cached for the
    /// next attempt, or the error says why there are none.
    pub(super) async fn answer_challenge(
        &self,
        registry: &str,
        scope: &str,
        response: &reqwest::Response,
    ) -> Result<(), RegistryError> {
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let Some(challenge) = challenge else {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: "401 without a WWW-Authenticate challenge".into(),
            });
        };
        self.authenticate(registry, scope, &challenge).await
    }

    pub(super) async fn cached_authorization(
        &self,
        registry: &str,
        scope: &str,
    ) -> Option<HeaderValue> {
        let key = (registry.to_string(), scope.to_string());
        if let Some((token, expiry)) = self.inner.tokens.lock().await.get(&key)
            && Instant::now() < *expiry
        {
            return bearer_header(token);
        }
        // A token for pull+push also serves pull.
        if !scope.ends_with(":push") && !scope.ends_with(",push") {
            let push_key = (registry.to_string(), format!("{scope},push"));
            if let Some((token, expiry)) = self.inner.tokens.lock().await.get(&push_key)
                && Instant::now() < *expiry
            {
                return bearer_header(token);
            }
        }
        let basic = self.inner.basic.lock().await;
        basic.get(registry).and_then(basic_header)
    }

    /// The credentials for `registry` and for no other: the explicit ones if they are bound
    /// to it, else what the docker config holds for this host (a helper is asked about this
    /// host only). A registry signet has none for gets none: at most an anonymous token
    /// request, never someone else's secret (issue 12).
    pub(super) async fn credentials(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = self
            .inner
            .options
            .credentials
            .as_ref()
            .and_then(|bound| bound.credentials_for(registry))
        {
            return Ok(Some(c.clone()));
        }
        // Credential helpers are processes: ask each registry's once per client.
        let mut cache = self.inner.credentials.lock().await;
        if let Some(found) = cache.get(registry) {
            return Ok(found.clone());
        }
        let found =
            auth::credentials_for(registry, self.inner.options.docker_config.as_ref()).await?;
        cache.insert(registry.to_string(), found.clone());
        Ok(found)
    }

    async fn authenticate(
        &self,
        registry: &str,
        scope: &str,
        challenge: &str,
    ) -> Result<(), RegistryError> {
        let challenge = auth::parse_www_authenticate(challenge)?;
        let credentials = self.credentials(registry).await?;
        match challenge {
            Challenge::Basic { .. } => {
                let Some(credentials) = credentials else {
                    let reason = match &self.inner.options.credentials {
                        // Say why the credentials given were not used here.
                        Some(bound) => format!(
                            "the registry requires a login and no credentials were found for \
                             it; the credentials given are for {} only (docker login, \
                             ~/.docker/config.json, or --registry-credentials-host)",
                            bound.host()
                        ),
                        None => "the registry requires a login and no credentials were found \
                                 (docker login, ~/.docker/config.json, or --registry-username)"
                            .into(),
                    };
                    return Err(RegistryError::Authentication {
                        registry: registry.to_string(),
                        reason,
                    });
                };
                self.inner
                    .basic
                    .lock()
                    .await
                    .insert(registry.to_string(), credentials);
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let mut scopes = vec![scope.to_string()];
                if let Some(s) = challenge_scope
                    && !scopes.contains(&s)
                {
                    scopes.push(s);
                }
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), &scopes, credentials)
                    .await?;
                self.inner.tokens.lock().await.insert(
                    (registry.to_string(), scope.to_string()),
                    (
                        SecretString::from(token.bearer().unwrap_or_default()),
                        Instant::now() + token.lifetime(),
                    ),
                );
                Ok(())
            }
        }
    }

    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credentials: Option<Credentials>,
    ) -> Result<auth::TokenResponse, RegistryError> {
        let url = auth::token_request_url(realm, service, scopes)?;
        // A registry names its token service; that must not be a way to reach what the
        // registry itself could not be.
        if let Some(reason) = egress::refusal(&self.inner.options.egress, &egress::url_host(&url)) {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: format!("token service {realm}: {reason}"),
            });
        }
        let mut request = match &credentials {
            Some(Credentials::IdentityToken(token)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", token.expose_secret().to_string()),
                    ("client_id", "signet".to_string()),
                ];
                if let Some(service) = service {
                    form.push(("service", service.to_string()));
                }
                form.push(("scope", scopes.join(" ")));
                self.inner.http.post(realm).form(&form)
            }
            _ => self.inner.http.get(url.as_str()),
        };
        if let Some(value) = credentials.as_ref().and_then(basic_header) {
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = self
            .exchange(request)
            .await
            .map_err(|e| RegistryError::Authentication {
                registry: registry.to_string(),
                reason: format!("token service unreachable: {}", error_chain(&e)),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: format!("token service answered {}", status.as_u16()),
            });
        }
        let body = read_limited(response, 1 << 20, "token response").await?;
        let token: auth::TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                what: format!("token response from {registry}"),
                reason: e.to_string(),
            })?;
        if token.bearer().is_none() {
            return Err(RegistryError::Authentication {
                registry: registry.to_string(),
                reason: "token service returned no token".into(),
            });
        }
        Ok(token)
    }
}

/// The error for a 401 that could not be answered, or a 403.
pub(super) async fn refused(
    registry: &str,
    what: &str,
    response: reqwest::Response,
) -> RegistryError {
    let status = response.status();
    let message = read_error_message(response).await;
    RegistryError::Authentication {
        registry: registry.to_string(),
        reason: format!(
            "{} for {what}{}",
            status.as_u16(),
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
    }
}

fn bearer_header(token: &SecretString) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {}", token.expose_secret())).ok()
}

fn basic_header(credentials: &Credentials) -> Option<HeaderValue> {
    let (user, pass) = match credentials {
        Credentials::Basic { username, password } => (username.as_str(), password.expose_secret()),
        Credentials::IdentityToken(_) => return None,
    };
    let pair = Zeroizing::new(format!("{user}:{pass}"));
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
    let mut value = HeaderValue::from_str(&format!("Basic {}", encoded.as_str())).ok()?;
    value.set_sensitive(true);
    Some(value)
}
