//! The crate's one error type.

use std::path::PathBuf;

use crate::uri::UriError;

/// Everything that can go wrong reaching a key in a PKCS#11 module. Messages name the module,
/// the token and the object asked for, and never a PIN.
#[non_exhaustive]
#[derive(thiserror::Error, Debug)]
pub enum Pkcs11Error {
    /// The `pkcs11:` URI is malformed.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// Neither the URI nor the caller named a module.
    #[error(
        "no PKCS#11 module: add ?module-path=/path/to/module.so to the URI, or set \
         SIGNET_PKCS11_MODULE (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)"
    )]
    NoModule,
    /// The module file does not exist.
    #[error("PKCS#11 module {} not found", .module.display())]
    ModuleNotFound {
        /// The path given.
        module: PathBuf,
    },
    /// The module exists but could not be loaded (not a shared library, wrong architecture,
    /// missing symbols).
    #[error("cannot load PKCS#11 module {}: {reason}", .module.display())]
    ModuleLoad {
        /// The path given.
        module: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 module {}: {operation} failed: {reason}", .module.display())]
    Call {
        /// The module.
        module: PathBuf,
        /// What signet was doing.
        operation: String,
        /// The return value's name (`CKR_…`) or the wrapper's message.
        reason: String,
    },
    /// No token matches the URI's token attributes.
    #[error("no token matching {selector} in PKCS#11 module {}; {}", .module.display(), listed("tokens", .available))]
    TokenNotFound {
        /// The token attributes asked for.
        selector: String,
        /// The module.
        module: PathBuf,
        /// The tokens there (label and serial).
        available: Vec<String>,
    },
    /// Several tokens match the URI's token attributes.
    #[error("{} tokens match {selector} in PKCS#11 module {}: {}; add serial= or slot-id= to the URI", .matching.len(), .module.display(), .matching.join(", "))]
    TokenAmbiguous {
        /// The token attributes asked for.
        selector: String,
        /// The module.
        module: PathBuf,
        /// The tokens that match (label and serial).
        matching: Vec<String>,
    },
    /// The token needs a PIN and none was available.
    #[error(
        "token \"{token}\" needs its user PIN: set SIGNET_PKCS11_PIN, add ?pin-value=… to the \
         URI, or run on a terminal to be asked"
    )]
    NoPin {
        /// The token's label.
        token: String,
    },
    /// The token refused the PIN.
    #[error("wrong PIN for token \"{token}\"")]
    WrongPin {
        /// The token's label.
        token: String,
    },
    /// The token's user PIN is locked after too many wrong PINs.
    #[error(
        "the user PIN of token \"{token}\" is locked (too many wrong PINs); its security officer must reset it"
    )]
    PinLocked {
        /// The token's label.
        token: String,
    },
    /// No private key matches the URI's object attributes.
    #[error("no private key matching {selector} in token \"{token}\"; {}", listed("private keys", .available))]
    KeyNotFound {
        /// The object attributes asked for.
        selector: String,
        /// The token's label.
        token: String,
        /// The private keys there (label and id), as far as the session may see them.
        available: Vec<String>,
    },
    /// Several private keys match the URI's object attributes.
    #[error("{} private keys match {selector} in token \"{token}\": {}; add id= or object= to the URI", .matching.len(), .matching.join(", "))]
    KeyAmbiguous {
        /// The object attributes asked for.
        selector: String,
        /// The token's label.
        token: String,
        /// The keys that match (label and id).
        matching: Vec<String>,
    },
    /// The key cannot be used to sign (wrong type, curve, or usage).
    #[error("private key {key} in token \"{token}\" cannot sign: {reason}")]
    UnusableKey {
        /// The key (label and id).
        key: String,
        /// The token's label.
        token: String,
        /// Why.
        reason: String,
    },
    /// The public half of the key cannot be read or is invalid.
    #[error("public key of {key} in token \"{token}\": {reason}")]
    PublicKey {
        /// The key (label and id).
        key: String,
        /// The token's label.
        token: String,
        /// Why.
        reason: String,
    },
}

fn listed(what: &str, items: &[String]) -> String {
    if items.is_empty() {
        format!("it has no {what}")
    } else {
        format!("{what} there: {}", items.join(", "))
    }
}
