//! Pure data and cryptography for signet.
//!
//! This crate owns the types every other signet crate speaks: image references and digests,
//! DSSE envelopes, in-toto statements, simple-signing payloads, Sigstore bundles, and keys
//! (cosign-compatible encrypted private keys, PKIX public keys) with signing and verification, and
//! OpenPGP keys and signed messages for Binary Authorization PGP attestations ([`pgp`]), and
//! RFC 3161 timestamp tokens verified against trusted timestamp authorities ([`timestamp`]), and
//! keyless signing certificates (Fulcio's or a site's own CA's) checked against a trusted root
//! ([`keyless`]).
//!
//! It must not do I/O or async: callers hand it bytes and get back parsed, checked values.
//! Verification returns proof values ([`Verified`]) that only this crate can construct.
//!
//! ```
//! use signet_core::keys::{KeyPair, PublicKey};
//!
//! let pair = KeyPair::generate_p256().unwrap();
//! let signature = pair.sign(b"hello");
//! let public = PublicKey::from_pem(&pair.public_key().to_pem()).unwrap();
//! assert!(public.verify(b"hello", &signature).is_ok());
//! assert!(public.verify(b"hellO", &signature).is_err());
//! ```
#![forbid(unsafe_code)]

pub mod binauthz;
pub mod bundle;
pub mod certified;
pub mod digest;
pub mod dsse;
pub mod evidence;
pub mod intoto;
pub mod keyless;
pub mod keys;
pub mod oci;
pub mod pgp;
pub mod reference;
pub mod signed_time;
pub mod simplesigning;
pub mod timestamp;
pub mod tlog;
pub mod verified;

pub use verified::Verified;
