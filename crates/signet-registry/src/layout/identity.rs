//! A layout image's identity: the name policies match and statements sign.

use std::path::Path;

use signet_core::oci::Descriptor;
use signet_core::reference::ImageRef;

use super::Layout;
use super::files::layout_err;
use super::index::{ref_name, tag_part};
use crate::error::RegistryError;

/// The registry part of the identity of an image whose layout does not name it fully.
pub(crate) const LAYOUT_REGISTRY: &str = "layout.invalid";

impl Layout {
    /// The identity of `entry` (see the module docs) and the scope its tags live in.
    ///
    /// `index.json` is not trusted: anyone who can edit the file can write any name into its
    /// annotations, so a name from there would let a layout choose how policies judge it (an
    /// exempt pattern, a trusted registry). A full reference is the identity only when the
    /// user typed it as the tag (`oci:DIR:registry.example/app:v1`), as with a registry
    /// reference; `resolve_ref` found the entry by exactly that name. Otherwise the identity is
    /// `layout.invalid/<file or directory name>[:tag]`, whatever the annotations say.
    ///
    /// The scope only says where tags next to the image (legacy cosign tags) are looked up:
    /// the typed full reference, else the entry's own full ref name. Evidence found there is
    /// still checked against the digest and the identity, so it decides nothing by itself.
    pub(super) fn identity(
        &self,
        entry: Option<&Descriptor>,
        given_tag: Option<&str>,
    ) -> Result<(ImageRef, Option<String>), RegistryError> {
        if let Some(given) = given_tag
            && let Some(image) = qualified(given)
        {
            let scope = repository_of(given, &image);
            return Ok((image, Some(scope)));
        }
        let ref_name = entry.and_then(ref_name).map(String::as_str);
        let scope = ref_name.and_then(|name| qualified(name).map(|i| repository_of(name, &i)));
        let base = format!("{LAYOUT_REGISTRY}/{}", sanitized_name(&self.inner.path));
        let image: ImageRef =
            base.parse()
                .map_err(|e: signet_core::reference::ReferenceError| {
                    layout_err(&self.describe(), format!("cannot name the image: {e}"))
                })?;
        // The tag only tells images of one layout apart: `layout.invalid` is no registry a
        // policy trusts by accident, and policies match names, not tags.
        let tag = given_tag.or_else(|| ref_name.map(tag_part));
        let image = match tag.map(|t| image.with_tag(t)) {
            Some(Ok(tagged)) => tagged,
            _ => image,
        };
        Ok((image, scope))
    }
}

/// The repository part of the full reference `name` (parsed as `image`), as written: without
/// its tag or digest.
pub(super) fn repository_of(name: &str, image: &ImageRef) -> String {
    let name = name.split('@').next().unwrap_or(name);
    match image.tag() {
        Some(tag) => name.strip_suffix(&format!(":{tag}")).unwrap_or(name),
        None => name,
    }
    .to_string()
}

/// `name` as an image reference if it names its registry (the first path component has a
/// `.` or `:` or is `localhost`, as in Docker's grammar).
pub(super) fn qualified(name: &str) -> Option<ImageRef> {
    let (first, _) = name.split_once('/')?;
    if first.contains('.') || first.contains(':') || first == "localhost" {
        name.parse().ok()
    } else {
        None
    }
}

/// The layout's file or directory name (without `.tar`) as a repository path component.
pub(super) fn sanitized_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .or_else(|| {
            std::fs::canonicalize(path)
                .ok()?
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
        .to_lowercase();
    let base = base.strip_suffix(".tar").unwrap_or(&base);
    let mut out = String::new();
    for c in base.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(128);
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "image".to_string()
    } else {
        out.to_string()
    }
}
