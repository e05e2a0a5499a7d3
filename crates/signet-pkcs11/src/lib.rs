//! Signing keys that never leave a PKCS#11 token: HSMs (Thales Luna, YubiHSM, AWS CloudHSM),
//! smart cards, SoftHSM, and Google's PKCS#11 library for Cloud KMS, all through one interface.
//!
//! Keys are named by RFC 7512 `pkcs11:` URIs, as cosign names them ([`Pkcs11Uri`]). A
//! [`Pkcs11Signer`] is a [`signet_core::keys::Signer`]: every signing path of signet takes one,
//! so a token key signs whatever a key file signs, and the signatures are the same bytes a
//! verifier expects (ECDSA as DER over SHA-256/SHA-384, RSA PKCS#1 v1.5 over SHA-256).
//!
//! This is the only signet crate that loads foreign code (the vendor's module, through the
//! `cryptoki` crate); the pure crates stay pure.
//!
//! ```no_run
//! use signet_core::keys::Signer as _;
//! use signet_pkcs11::{Pkcs11Signer, Pkcs11Uri};
//!
//! let uri: Pkcs11Uri =
//!     "pkcs11:token=ci;object=signing?module-path=/usr/lib/softhsm/libsofthsm2.so"
//!         .parse()?;
//! let signer = Pkcs11Signer::open(&uri, None, &|_token| {
//!     std::env::var("SIGNET_PKCS11_PIN").ok().map(Into::into)
//! })?;
//! let signature = signer.sign(b"payload")?;
//! signer.public_key().verify(b"payload", &signature)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod error;
mod module;
mod signer;
mod uri;

pub use error::Pkcs11Error;
pub use module::{KeyClass, KeyInfo, Module, TokenInfo};
pub use signer::{Pkcs11Signer, load_module, public_key};
pub use uri::{ObjectType, Pkcs11Uri, UriError};

/// The environment variable naming the default module, when a URI has no `module-path`.
pub const MODULE_ENV: &str = "SIGNET_PKCS11_MODULE";
/// The environment variable holding the user PIN, when a URI has no `pin-value`.
pub const PIN_ENV: &str = "SIGNET_PKCS11_PIN";
