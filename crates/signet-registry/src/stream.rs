//! The byte stream both stores hand blobs over in.
//!
//! It lives apart from [`crate::Repository`] so that the stores (registry, layout) and the
//! repository that dispatches to them do not depend on each other.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::error::RegistryError;

/// A stream of blob bytes, as read (not yet checked: the receiver hashes as it goes).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>;
