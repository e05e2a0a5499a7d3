//! Distribution API operations on one repository: resolve, manifests, blobs, tags, referrers.
//!
//! Every manifest and blob read is checked against its digest before it is returned.

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use signet_core::digest::Digest;
use signet_core::oci::{self, Descriptor, Index};
use signet_core::reference::{ImageRef, PinnedRef};

use crate::TagOrDigest;
use crate::auth::Access;
use crate::client::{Client, FetchedManifest, Precondition, PutManifest, Reply, Request};
use crate::error::RegistryError;

/// One repository in one registry, reached over the distribution API.
#[derive(Clone)]
pub(crate) struct Remote {
    client: Client,
    registry: String,
    name: String,
}

/// A page of the referrers API, or the news that the registry has none.
#[derive(Debug)]
pub enum ReferrersApi {
    /// The registry serves the referrers API: all descriptors, filtered as asked.
    Supported(Vec<Descriptor>),
    /// The registry answered 404: no referrers API (use the fallback tag).
    Unsupported,
}

/// Tags of a repository that start with a prefix.
pub(crate) struct TagList {
    pub(crate) tags: Vec<String>,
    /// Whether the registry listed the repository (`false`: it answered 404).
    pub(crate) repository_exists: bool,
}

impl Remote {
    /// The repository of `image` (its registry host as contacted, and its path).
    pub(crate) fn new(client: &Client, image: &ImageRef) -> Remote {
        Remote {
            client: client.clone(),
            registry: image.api_host().to_string(),
            name: image.repository().to_string(),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The registry host contacted.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn what(&self, kind: &str, reference: TagOrDigest<'_>) -> String {
        let sep = reference.separator();
        format!("{kind} {}/{}{sep}{reference}", self.registry, self.name)
    }

    async fn send(
        &self,
        access: Access,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<bytes::Bytes>,
        what: &str,
    ) -> Result<Reply, RegistryError> {
        let request = Request {
            access,
            method,
            path_and_query: path,
            headers,
            body,
            stream: None,
            timeout: None,
            what,
        };
        self.client.send(&self.registry, &self.name, request).await
    }

    pub(crate) async fn status_error(&self, reply: Reply, what: &str) -> RegistryError {
        let status = reply.status.as_u16();
        if status == 404 {
            return RegistryError::NotFound {
                what: what.to_string(),
            };
        }
        RegistryError::Status {
            registry: self.registry.clone(),
            what: what.to_string(),
            status,
            message: reply.error_message().await,
        }
    }

    pub(crate) fn accept_manifests() -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&oci::MANIFEST_MEDIA_TYPES.join(", ")) {
            headers.insert(header::ACCEPT, v);
        }
        headers
    }

    /// Resolves `image` to a digest, once. A reference that already carries a digest is
    /// returned as is, without a request.
    pub async fn resolve(&self, image: &ImageRef) -> Result<PinnedRef, RegistryError> {
        if let Some(pinned) = image.pinned() {
            return Ok(pinned);
        }
        let tag = image.tag().unwrap_or("latest");
        match self.resolve_tag(tag).await? {
            Some(digest) => Ok(image.with_digest(digest)),
            None => Err(RegistryError::NotFound {
                what: self.what("manifest", TagOrDigest::Tag(tag)),
            }),
        }
    }

    /// Fetches the manifest `digest`, checking the bytes against it.
    pub async fn get_manifest(&self, digest: &Digest) -> Result<FetchedManifest, RegistryError> {
        let what = self.what("manifest", TagOrDigest::Digest(digest));
        self.fetch_manifest(TagOrDigest::Digest(digest), Some(digest))
            .await?
            .ok_or(RegistryError::NotFound { what })
    }

    /// Fetches the manifest a tag points at, or `None` if the tag does not exist. The digest
    /// returned is that of the bytes received; a `Docker-Content-Digest` header that disagrees
    /// is an error.
    pub async fn get_manifest_by_tag(
        &self,
        tag: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        self.fetch_manifest(TagOrDigest::Tag(tag), None).await
    }

    /// GETs a manifest by tag or digest. The bytes must hash to `expected` when given, else to
    /// the registry's `Docker-Content-Digest` when it sends one. `None` on 404.
    async fn fetch_manifest(
        &self,
        reference: TagOrDigest<'_>,
        expected: Option<&Digest>,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let what = self.what("manifest", reference);
        self.client
            .within(format!("fetching {what}"), async {
                let reply = self
                    .send(
                        Access::Pull,
                        Method::GET,
                        &format!("/v2/{}/manifests/{reference}", self.name),
                        Self::accept_manifests(),
                        None,
                        &what,
                    )
                    .await?;
                if reply.status == StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                if !reply.status.is_success() {
                    return Err(self.status_error(reply, &what).await);
                }
                let media_type = reply.header("content-type").unwrap_or("").to_string();
                let etag = reply.header("etag").map(str::to_string);
                let claimed = reply
                    .header("docker-content-digest")
                    .and_then(|c| c.parse::<Digest>().ok());
                let bytes = reply
                    .bytes(self.client.limits().max_manifest_bytes, &what)
                    .await?;
                let digest = match (expected, claimed) {
                    (Some(expected), _) => expected.clone(),
                    (None, Some(claimed)) => claimed,
                    (None, None) => Digest::sha256_of(&bytes),
                };
                check_digest(&what, &digest, &bytes)?;
                Ok(Some(FetchedManifest {
                    digest,
                    media_type,
                    bytes,
                    etag,
                }))
            })
            .await
    }

    /// Fetches a small blob (attestation, signature payload) into memory, bounded and checked.
    pub async fn get_blob(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        self.get_blob_limited(digest, self.client.limits().max_blob_bytes)
            .await
    }

    /// [`Remote::get_blob`], reading no more than `limit` bytes (at most the blob limit): a
    /// registry that sends more is cut off as it streams, before the bytes pile up.
    pub async fn get_blob_limited(
        &self,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let limit = limit.min(self.client.limits().max_blob_bytes);
        let what = self.what("blob", TagOrDigest::Digest(digest));
        self.client
            .within(format!("fetching {what}"), async {
                let reply = self
                    .send(
                        Access::Pull,
                        Method::GET,
                        &format!("/v2/{}/blobs/{digest}", self.name),
                        HeaderMap::new(),
                        None,
                        &what,
                    )
                    .await?;
                if !reply.status.is_success() {
                    return Err(self.status_error(reply, &what).await);
                }
                let bytes = reply.bytes(limit, &what).await?;
                check_digest(&what, digest, &bytes)?;
                Ok(bytes)
            })
            .await
    }

    /// Whether the blob exists in this repository.
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let what = self.what("blob", TagOrDigest::Digest(digest));
        let reply = self
            .send(
                Access::Pull,
                Method::HEAD,
                &format!("/v2/{}/blobs/{digest}", self.name),
                HeaderMap::new(),
                None,
                &what,
            )
            .await?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(reply, &what).await),
        }
    }

    /// Uploads `bytes` as a blob (monolithic upload), unless it is already there.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        let what = self.what("blob", TagOrDigest::Digest(&digest));
        self.client
            .within(format!("uploading {what}"), async {
                if self.blob_exists(&digest).await? {
                    return Ok(digest.clone());
                }
                let reply = self
                    .send(
                        Access::Push,
                        Method::POST,
                        &format!("/v2/{}/blobs/uploads/", self.name),
                        HeaderMap::new(),
                        None,
                        &what,
                    )
                    .await?;
                if reply.status != StatusCode::ACCEPTED {
                    return Err(self.status_error(reply, &what).await);
                }
                let location = reply
                    .header("location")
                    .ok_or_else(|| RegistryError::Malformed {
                        what: format!("upload session for {what}"),
                        reason: "no Location header".into(),
                    })?
                    .to_string();
                let path = upload_path(&location, &self.registry)?;
                let sep = if path.contains('?') { '&' } else { '?' };
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                let reply = self
                    .send(
                        Access::Push,
                        Method::PUT,
                        &format!("{path}{sep}digest={digest}"),
                        headers,
                        Some(bytes::Bytes::copy_from_slice(bytes)),
                        &what,
                    )
                    .await?;
                if reply.status != StatusCode::CREATED {
                    return Err(self.status_error(reply, &what).await);
                }
                Ok(digest.clone())
            })
            .await
    }

    /// Pushes manifest `bytes` of `media_type` under `reference` (a tag, or the digest), with
    /// an optional precondition for tags.
    pub async fn put_manifest(
        &self,
        reference: TagOrDigest<'_>,
        media_type: &str,
        bytes: &[u8],
        precondition: Precondition,
    ) -> Result<PutManifest, RegistryError> {
        let digest = Digest::sha256_of(bytes);
        let what = self.what("manifest", reference);
        self.client
            .within(format!("pushing {what}"), async {
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(media_type).map_err(|_| {
                        RegistryError::Usage(format!("invalid media type {media_type:?}"))
                    })?,
                );
                match &precondition {
                    Precondition::None => {}
                    Precondition::Absent => {
                        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
                    }
                    Precondition::Matches(etag) => {
                        if let Ok(v) = HeaderValue::from_str(etag) {
                            headers.insert(header::IF_MATCH, v);
                        }
                    }
                }
                let reply = self
                    .send(
                        Access::Push,
                        Method::PUT,
                        &format!("/v2/{}/manifests/{reference}", self.name),
                        headers,
                        Some(bytes::Bytes::copy_from_slice(bytes)),
                        &what,
                    )
                    .await?;
                if reply.status == StatusCode::PRECONDITION_FAILED {
                    return Err(RegistryError::Status {
                        registry: self.registry.clone(),
                        what: what.clone(),
                        status: 412,
                        message: "precondition failed: changed since read".into(),
                    });
                }
                if !reply.status.is_success() {
                    return Err(self.status_error(reply, &what).await);
                }
                if let Some(claimed) = reply
                    .header("docker-content-digest")
                    .and_then(|d| d.parse::<Digest>().ok())
                    && claimed != digest
                {
                    return Err(RegistryError::DigestMismatch {
                        what,
                        expected: digest,
                        actual: claimed,
                    });
                }
                Ok(PutManifest {
                    digest: digest.clone(),
                    oci_subject: reply.header("oci-subject").map(str::to_string),
                })
            })
            .await
    }

    /// Tags that start with `prefix`, listed from the first tag after `prefix` (the
    /// registry sorts tags lexically), paginated and bounded.
    pub async fn tags_with_prefix(&self, prefix: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.tag_list(prefix).await?.tags)
    }

    /// The tags that start with `prefix`, and whether the repository exists at all (a
    /// missing repository lists no tags with 404).
    pub(crate) async fn tag_list(&self, prefix: &str) -> Result<TagList, RegistryError> {
        let what = format!("tag list of {}/{}", self.registry, self.name);
        let limits = self.client.limits().clone();
        self.client
            .within(format!("listing {what}"), async {
                let mut out = Vec::new();
                let mut path = format!("/v2/{}/tags/list?n=1000&last={prefix}", self.name);
                for _ in 0..limits.max_pages {
                    let reply = self
                        .send(
                            Access::Pull,
                            Method::GET,
                            &path,
                            HeaderMap::new(),
                            None,
                            &what,
                        )
                        .await?;
                    if reply.status == StatusCode::NOT_FOUND {
                        return Ok(TagList {
                            tags: out,
                            repository_exists: false,
                        });
                    }
                    if !reply.status.is_success() {
                        return Err(self.status_error(reply, &what).await);
                    }
                    let next = reply.header("link").and_then(next_link);
                    let body = reply.bytes(limits.max_manifest_bytes, &what).await?;
                    #[derive(serde::Deserialize)]
                    struct Tags {
                        #[serde(default)]
                        tags: Option<Vec<String>>,
                    }
                    let tags: Tags =
                        serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                            what: what.clone(),
                            reason: e.to_string(),
                        })?;
                    let tags = tags.tags.unwrap_or_default();
                    let mut past_prefix = false;
                    for tag in tags {
                        if tag.starts_with(prefix) {
                            out.push(tag);
                            if out.len() > limits.max_referrers {
                                return Err(RegistryError::TooMany {
                                    what: what.clone(),
                                    limit: limits.max_referrers,
                                    unit: "tags",
                                });
                            }
                        } else if tag.as_str() > prefix {
                            past_prefix = true;
                        }
                    }
                    match next {
                        Some(next) if !past_prefix => path = next,
                        _ => {
                            return Ok(TagList {
                                tags: out,
                                repository_exists: true,
                            });
                        }
                    }
                }
                Err(RegistryError::TooMany {
                    what,
                    limit: limits.max_pages,
                    unit: "pages",
                })
            })
            .await
    }

    /// Lists referrers of `subject` through the OCI 1.1 referrers API, following `Link`
    /// pagination within bounds. The registry's own `artifactType` filtering is trusted only
    /// when it says so with `OCI-Filters-Applied`; otherwise the filter is applied here.
    pub async fn referrers_api(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<ReferrersApi, RegistryError> {
        let what = format!("referrers of {}/{}@{subject}", self.registry, self.name);
        let limits = self.client.limits().clone();
        self.client
            .within(format!("listing {what}"), async {
                let mut out: Vec<Descriptor> = Vec::new();
                let mut path = format!("/v2/{}/referrers/{subject}", self.name);
                if let Some(t) = artifact_type {
                    path.push_str("?artifactType=");
                    path.push_str(&percent_encode(t));
                }
                let mut headers = HeaderMap::new();
                headers.insert(header::ACCEPT, HeaderValue::from_static(oci::OCI_INDEX));
                for page in 0..limits.max_pages {
                    let reply = self
                        .send(
                            Access::Pull,
                            Method::GET,
                            &path,
                            headers.clone(),
                            None,
                            &what,
                        )
                        .await?;
                    if reply.status == StatusCode::NOT_FOUND && page == 0 {
                        return Ok(ReferrersApi::Unsupported);
                    }
                    if !reply.status.is_success() {
                        return Err(self.status_error(reply, &what).await);
                    }
                    let filtered = reply
                        .header("oci-filters-applied")
                        .is_some_and(|v| v.split(',').any(|f| f.trim() == "artifactType"));
                    let next = reply.header("link").and_then(next_link);
                    let body = reply.bytes(limits.max_manifest_bytes, &what).await?;
                    let index: Index =
                        serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                            what: what.clone(),
                            reason: e.to_string(),
                        })?;
                    out.extend(index.manifests.into_iter().filter(|d| {
                        filtered
                            || artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t))
                    }));
                    if out.len() > limits.max_referrers {
                        return Err(RegistryError::TooMany {
                            what,
                            limit: limits.max_referrers,
                            unit: "referrers",
                        });
                    }
                    match next {
                        Some(next) => path = next,
                        None => return Ok(ReferrersApi::Supported(out)),
                    }
                }
                Err(RegistryError::TooMany {
                    what,
                    limit: limits.max_pages,
                    unit: "pages",
                })
            })
            .await
    }
}

fn check_digest(what: &str, expected: &Digest, bytes: &[u8]) -> Result<(), RegistryError> {
    let actual = signet_core::digest::Digest::of(expected.algorithm(), bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        })
    }
}

/// The path (and query) of an upload `Location`, which may be absolute or relative. An
/// absolute URL on another host is refused: the upload must go where the credentials go.
pub(crate) fn upload_path(location: &str, registry: &str) -> Result<String, RegistryError> {
    if location.starts_with('/') {
        return Ok(location.to_string());
    }
    let url = reqwest::Url::parse(location).map_err(|e| RegistryError::Malformed {
        what: "upload Location".into(),
        reason: e.to_string(),
    })?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    if host != registry && !(registry.ends_with("docker.io") && host.ends_with("docker.io")) {
        return Err(RegistryError::Malformed {
            what: "upload Location".into(),
            reason: format!("points at another host ({host})"),
        });
    }
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}

/// The target of a `Link: <url>; rel="next"` header, as a path on the same registry.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let part = part.trim();
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        if !is_next {
            return None;
        }
        if target.starts_with('/') {
            Some(target.to_string())
        } else {
            let url = reqwest::Url::parse(target).ok()?;
            Some(match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            })
        }
    })
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_forms() {
        assert_eq!(
            next_link("</v2/a/referrers/sha256:x?n=2&last=y>; rel=\"next\"").as_deref(),
            Some("/v2/a/referrers/sha256:x?n=2&last=y")
        );
        assert_eq!(
            next_link("<https://r.example/v2/a/tags/list?last=b>; rel=next").as_deref(),
            Some("/v2/a/tags/list?last=b")
        );
        assert_eq!(next_link("</v2/a>; rel=\"prev\""), None);
    }

    #[test]
    fn upload_location_on_another_host_is_refused() {
        assert!(upload_path("/v2/a/blobs/uploads/1?x=y", "r:5000").is_ok());
        assert_eq!(
            upload_path("http://r:5000/v2/a/blobs/uploads/1?_state=s", "r:5000").unwrap(),
            "/v2/a/blobs/uploads/1?_state=s"
        );
        assert!(upload_path("http://evil:5000/v2/a/blobs/uploads/1", "r:5000").is_err());
    }
}
