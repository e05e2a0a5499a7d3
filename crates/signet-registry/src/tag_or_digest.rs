//! What a manifest is addressed by in a repository: a tag or a digest.

use std::fmt;

use signet_core::digest::Digest;

/// A manifest's address in a repository: `repo:tag` or `repo@digest`. Callers say which they
/// mean instead of leaving it to be guessed from the string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagOrDigest<'a> {
    /// A tag, such as `v1` or the fallback tag `sha256-<hex>`.
    Tag(&'a str),
    /// A content digest.
    Digest(&'a Digest),
}

impl TagOrDigest<'_> {
    /// The character that joins it to a repository name: `:` for a tag, `@` for a digest.
    pub fn separator(self) -> char {
        match self {
            TagOrDigest::Tag(_) => ':',
            TagOrDigest::Digest(_) => '@',
        }
    }
}

impl<'a> From<&'a Digest> for TagOrDigest<'a> {
    fn from(digest: &'a Digest) -> Self {
        TagOrDigest::Digest(digest)
    }
}

/// The tag, or the digest, as it appears in a URL path (`/v2/<name>/manifests/<this>`).
impl fmt::Display for TagOrDigest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagOrDigest::Tag(tag) => f.write_str(tag),
            TagOrDigest::Digest(digest) => write!(f, "{digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_joins_with_a_colon_and_a_digest_with_an_at_sign() {
        let digest = Digest::sha256_of(b"x");
        assert_eq!(TagOrDigest::Tag("v1").separator(), ':');
        assert_eq!(TagOrDigest::from(&digest).separator(), '@');
        assert_eq!(TagOrDigest::Tag("v1").to_string(), "v1");
        assert_eq!(TagOrDigest::Digest(&digest).to_string(), digest.to_string());
    }

    #[test]
    fn a_tag_that_looks_like_a_digest_is_still_a_tag() {
        // The fallback tag of a digest is a tag; nothing is guessed from the text.
        let tag = Digest::sha256_of(b"x").fallback_tag();
        assert_eq!(TagOrDigest::Tag(&tag).separator(), ':');
    }
}
