//! Streaming blob transfer and cross-repository mounts over the distribution API.
//!
//! Blobs of any size pass through in chunks, never whole in memory: a download is a stream of
//! the response body, an upload is one monolithic `PUT ?digest=` whose body is that stream
//! ([distribution spec, "pushing a blob monolithically"][spec]). The upload hashes the bytes as
//! they pass and holds back the last chunk until the digest and size are known to be right, so
//! a wrong blob never reaches the registry whole and nothing is committed.
//!
//! [spec]: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-a-blob-monolithically

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode};
use signet_core::digest::Digest;

use crate::TagOrDigest;
use crate::auth::Access;
use crate::client::{Request, error_chain};
use crate::error::RegistryError;
use crate::hashing::Hasher;
use crate::store::{Remote, upload_path};
use crate::stream::ByteStream;

/// The slowest transfer rate a streamed upload is allowed before it times out, in bytes per
/// second; the upload's timeout is the request timeout plus its size at this rate.
const SLOWEST_UPLOAD_RATE: u64 = 256 * 1024;

impl Remote {
    /// Whether the manifest `digest` exists in this repository (HEAD).
    pub(crate) async fn manifest_exists(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let what = self.what("manifest", TagOrDigest::Digest(digest));
        let path = format!("/v2/{}/manifests/{digest}", self.name());
        self.client()
            .within(format!("checking {what}"), async {
                let mut request = Request::new(Access::Pull, Method::HEAD, &path, &what);
                request.headers = Remote::accept_manifests();
                let reply = self
                    .client()
                    .send(self.registry(), self.name(), request)
                    .await?;
                match reply.status {
                    s if s.is_success() => Ok(true),
                    StatusCode::NOT_FOUND => Ok(false),
                    _ => Err(self.status_error(reply, &what).await),
                }
            })
            .await
    }

    /// The digest `tag` points at (HEAD, with a GET where the registry sends no digest), or
    /// `None` if there is no such tag.
    pub(crate) async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>, RegistryError> {
        let what = self.what("manifest", TagOrDigest::Tag(tag));
        let path = format!("/v2/{}/manifests/{tag}", self.name());
        let reply = self
            .client()
            .within(format!("resolving {what}"), async {
                let mut request = Request::new(Access::Pull, Method::HEAD, &path, &what);
                request.headers = Remote::accept_manifests();
                self.client()
                    .send(self.registry(), self.name(), request)
                    .await
            })
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if reply.status.is_success()
            && let Some(digest) = reply
                .header("docker-content-digest")
                .and_then(|d| d.parse::<Digest>().ok())
        {
            return Ok(Some(digest));
        }
        Ok(self.get_manifest_by_tag(tag).await?.map(|m| m.digest))
    }

    /// Opens the blob for streaming. The answer must come within the operation deadline; after
    /// that each chunk must come within the request timeout (an idle timeout), however long
    /// the whole blob takes.
    pub(crate) async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, RegistryError> {
        let what = self.what("blob", TagOrDigest::Digest(digest));
        let path = format!("/v2/{}/blobs/{digest}", self.name());
        // No total timeout for the body: the idle timeout below bounds a stalled transfer.
        let unbounded = Duration::from_secs(7 * 24 * 3600);
        let reply = self
            .client()
            .within(format!("fetching {what}"), async {
                let mut request = Request::new(Access::Pull, Method::GET, &path, &what);
                request.timeout = Some(unbounded);
                let reply = self
                    .client()
                    .send(self.registry(), self.name(), request)
                    .await?;
                if !reply.status.is_success() {
                    return Err(self.status_error(reply, &what).await);
                }
                Ok(reply)
            })
            .await?;
        let idle = self.client().limits().request_timeout;
        let registry = self.registry().to_string();
        let body = reply.into_stream().map(move |chunk| {
            chunk.map_err(|e| RegistryError::Unreachable {
                registry: registry.clone(),
                reason: format!("reading the blob: {}", error_chain(&e)),
            })
        });
        Ok(Box::pin(idle_timeout(body, idle, what)))
    }

    /// Uploads a blob from a stream, hashing as it goes; skips it when the registry has it.
    pub(crate) async fn put_blob_stream(
        &self,
        digest: &Digest,
        size: u64,
        body: ByteStream,
    ) -> Result<(), RegistryError> {
        let what = self.what("blob", TagOrDigest::Digest(digest));
        // Start the upload session (within the deadline): this also obtains push
        // authorization, which the streamed PUT cannot ask for itself (it is sent once).
        let start = format!("/v2/{}/blobs/uploads/", self.name());
        let location = self
            .client()
            .within(format!("uploading {what}"), async {
                if self.blob_exists(digest).await? {
                    return Ok(None);
                }
                let request = Request::new(Access::Push, Method::POST, &start, &what);
                let reply = self
                    .client()
                    .send(self.registry(), self.name(), request)
                    .await?;
                if reply.status != StatusCode::ACCEPTED {
                    return Err(self.status_error(reply, &what).await);
                }
                let location =
                    reply
                        .header("location")
                        .ok_or_else(|| RegistryError::Malformed {
                            what: format!("upload session for {what}"),
                            reason: "no Location header".into(),
                        })?;
                upload_path(location, self.registry()).map(Some)
            })
            .await?;
        let Some(path) = location else {
            return Ok(());
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let put = format!("{path}{sep}digest={digest}");
        let failure = Arc::new(Mutex::new(None));
        let checked = checked(body, digest.clone(), size, what.clone(), failure.clone());
        let mut request = Request::new(Access::Push, Method::PUT, &put, &what);
        request.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        request
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        request.stream = Some(reqwest::Body::wrap_stream(checked));
        let timeout = self
            .client()
            .limits()
            .request_timeout
            .saturating_add(Duration::from_secs(size / SLOWEST_UPLOAD_RATE));
        request.timeout = Some(timeout);
        let sent = self
            .client()
            .send(self.registry(), self.name(), request)
            .await;
        // What went wrong with the bytes explains a failed request better than the transport.
        let bad_bytes = failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(e) = bad_bytes {
            self.cancel_upload(&path).await;
            return Err(e);
        }
        let reply = match sent {
            Ok(reply) => reply,
            Err(e) => {
                self.cancel_upload(&path).await;
                return Err(e);
            }
        };
        if reply.status != StatusCode::CREATED {
            let err = self.status_error(reply, &what).await;
            self.cancel_upload(&path).await;
            return Err(err);
        }
        if let Some(claimed) = reply
            .header("docker-content-digest")
            .and_then(|d| d.parse::<Digest>().ok())
            && &claimed != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual: claimed,
            });
        }
        Ok(())
    }

    /// Mounts the blob from another repository of the same registry: `Ok(true)` when the
    /// registry mounted it, `Ok(false)` when it started an ordinary upload instead (which is
    /// cancelled; the caller copies the blob).
    pub(crate) async fn mount_blob(
        &self,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let what = self.what("blob", TagOrDigest::Digest(digest));
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={from}",
            self.name()
        );
        self.client()
            .within(format!("mounting {what} from {from}"), async {
                let request = Request::new(Access::Push, Method::POST, &path, &what);
                let reply = self
                    .client()
                    .send(self.registry(), self.name(), request)
                    .await?;
                match reply.status {
                    StatusCode::CREATED => Ok(true),
                    StatusCode::ACCEPTED => {
                        if let Some(location) = reply.header("location")
                            && let Ok(session) = upload_path(location, self.registry())
                        {
                            self.cancel_upload(&session).await;
                        }
                        Ok(false)
                    }
                    _ => Err(self.status_error(reply, &what).await),
                }
            })
            .await
    }

    /// Cancels an upload session, best effort: a registry forgets abandoned sessions anyway.
    async fn cancel_upload(&self, path: &str) {
        let request = Request::new(Access::Push, Method::DELETE, path, "upload session");
        let cancel = self.client().send(self.registry(), self.name(), request);
        let _ = tokio::time::timeout(Duration::from_secs(5), cancel).await;
    }
}

/// State of [`checked`].
struct Check {
    body: ByteStream,
    hasher: Option<Hasher>,
    /// The chunk held back until the next one arrives, or the end proves the bytes right.
    held: Option<Bytes>,
    seen: u64,
    size: u64,
    digest: Digest,
    what: String,
    failure: Arc<Mutex<Option<RegistryError>>>,
}

impl Check {
    /// Records why the bytes were refused (for the caller) and hands a copy to the stream.
    fn fail(&mut self, error: RegistryError) -> RegistryError {
        self.hasher = None;
        self.held = None;
        let copy = RegistryError::Malformed {
            what: self.what.clone(),
            reason: error.to_string(),
        };
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
        copy
    }
}

/// Passes `body` through, hashing and counting: more than `size` bytes, fewer, or bytes that do
/// not hash to `digest` end the stream with an error, and the last chunk is held back until
/// that is known, so a receiver never gets a complete wrong blob. The reason is also put in
/// `failure`, for the caller to report rather than the transport error that follows.
pub(crate) fn checked(
    body: ByteStream,
    digest: Digest,
    size: u64,
    what: String,
    failure: Arc<Mutex<Option<RegistryError>>>,
) -> impl Stream<Item = Result<Bytes, RegistryError>> + Send + 'static {
    let state = Check {
        body,
        hasher: Some(Hasher::new(digest.algorithm())),
        held: None,
        seen: 0,
        size,
        digest,
        what,
        failure,
    };
    futures_util::stream::unfold(state, |mut c| async move {
        loop {
            // Ended, or failed: nothing more.
            c.hasher.as_ref()?;
            match c.body.next().await {
                Some(Ok(chunk)) => {
                    c.seen = c.seen.saturating_add(chunk.len() as u64);
                    if c.seen > c.size {
                        let e = RegistryError::Malformed {
                            what: c.what.clone(),
                            reason: format!("more than the {} bytes its descriptor says", c.size),
                        };
                        let e = c.fail(e);
                        return Some((Err(e), c));
                    }
                    if let Some(h) = c.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    if let Some(previous) = c.held.replace(chunk) {
                        return Some((Ok(previous), c));
                    }
                }
                Some(Err(e)) => {
                    let e = c.fail(e);
                    return Some((Err(e), c));
                }
                None => {
                    let hasher = c.hasher.take()?;
                    if c.seen != c.size {
                        let e = RegistryError::Malformed {
                            what: c.what.clone(),
                            reason: format!(
                                "{} bytes where its descriptor says {}",
                                c.seen, c.size
                            ),
                        };
                        let e = c.fail(e);
                        return Some((Err(e), c));
                    }
                    let actual = hasher.finish();
                    if actual != c.digest {
                        let e = RegistryError::DigestMismatch {
                            what: c.what.clone(),
                            expected: c.digest.clone(),
                            actual,
                        };
                        let e = c.fail(e);
                        return Some((Err(e), c));
                    }
                    // Right bytes: let the last chunk go; the next poll ends the stream.
                    return c.held.take().map(|last| (Ok(last), c));
                }
            }
        }
    })
}

/// Ends `body` with an error when no chunk comes for `idle`.
fn idle_timeout(
    body: impl Stream<Item = Result<Bytes, RegistryError>> + Send + 'static,
    idle: Duration,
    what: String,
) -> impl Stream<Item = Result<Bytes, RegistryError>> + Send + 'static {
    let body = Box::pin(body);
    futures_util::stream::unfold(Some(body), move |state| {
        let what = what.clone();
        async move {
            let mut body = state?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(item)) => Some((item, Some(body))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(RegistryError::DeadlineExceeded {
                        operation: format!("receiving {what} (no data)"),
                        deadline: idle,
                    }),
                    None,
                )),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(chunks: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes, RegistryError>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn run(chunks: &[&'static [u8]], digest: &Digest, size: u64) -> (Vec<u8>, bool, String) {
        let failure = Arc::new(Mutex::new(None));
        let mut s = Box::pin(checked(
            stream_of(chunks),
            digest.clone(),
            size,
            "blob x".into(),
            failure.clone(),
        ));
        let mut out = Vec::new();
        let mut errored = false;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => errored = true,
            }
        }
        let reason = failure
            .lock()
            .unwrap()
            .take()
            .map(|e| e.to_string())
            .unwrap_or_default();
        (out, errored, reason)
    }

    #[tokio::test]
    async fn right_bytes_pass_whole() {
        let d = Digest::sha256_of(b"hello world");
        let (out, errored, _) = run(&[b"hello", b" ", b"world"], &d, 11).await;
        assert_eq!(out, b"hello world");
        assert!(!errored);
        let empty = Digest::sha256_of(b"");
        let (out, errored, _) = run(&[], &empty, 0).await;
        assert!(out.is_empty() && !errored);
    }

    /// The last chunk is held back until the bytes check out. This fails without the
    /// hold-back (the receiver would get all 11 bytes); the e2e test against distribution
    /// cannot tell, since distribution checks the digest of an upload itself.
    #[tokio::test]
    async fn wrong_bytes_never_reach_the_end() {
        let d = Digest::sha256_of(b"hello world");
        let (out, errored, reason) = run(&[b"hello", b" ", b"wurld"], &d, 11).await;
        assert!(errored);
        // The last chunk was held back: the receiver never had all 11 bytes.
        assert_eq!(out, b"hello ");
        assert!(reason.contains("digest mismatch for blob x"), "{reason}");
    }

    #[tokio::test]
    async fn wrong_sizes_are_refused() {
        let d = Digest::sha256_of(b"hello world");
        let (out, errored, reason) = run(&[b"hello", b" world!"], &d, 11).await;
        assert!(errored && out.len() < 11, "{out:?}");
        assert!(reason.contains("more than the 11 bytes"), "{reason}");
        let (out, errored, reason) = run(&[b"hello"], &d, 11).await;
        assert!(errored && out.is_empty());
        assert!(
            reason.contains("5 bytes where its descriptor says 11"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn sha512_digests_hash_too() {
        let d = Digest::of(signet_core::digest::Algorithm::Sha512, b"abc");
        let (out, errored, _) = run(&[b"a", b"bc"], &d, 3).await;
        assert_eq!(out, b"abc");
        assert!(!errored);
    }
}
