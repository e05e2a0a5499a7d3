//! A [`Signer`] whose private key stays in a PKCS#11 token.

use std::path::Path;
use std::sync::Mutex;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use secrecy::SecretString;
use sha2::Digest as _;
use signet_core::keys::{KeyAlgorithm, PublicKey, SignError, Signer};

use crate::error::Pkcs11Error;
use crate::module::{Module, TokenInfo, curve_name, describe_object, short_reason};
use crate::uri::{ObjectType, Pkcs11Uri};

/// The DER DigestInfo prefix of a SHA-256 hash (RFC 8017, section 9.2, note 1), for tokens
/// that sign PKCS#1 v1.5 only over a DigestInfo the caller builds (`CKM_RSA_PKCS`).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// How the token is asked to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// `CKM_ECDSA` over a SHA-256 hash we compute; raw `r || s` back, converted to DER.
    EcdsaSha256,
    /// `CKM_ECDSA` over a SHA-384 hash we compute.
    EcdsaSha384,
    /// `CKM_SHA256_RSA_PKCS`: the token hashes.
    RsaSha256Pkcs,
    /// `CKM_RSA_PKCS` over a SHA-256 DigestInfo we build, for tokens without the former.
    RsaPkcsDigestInfo,
}

/// A private key in a PKCS#11 token, found by a `pkcs11:` URI, with its public half read from
/// the token. The private key never leaves the token: each signature is one `C_Sign` call.
///
/// The session stays open and logged in for the signer's life; signing is serialised on it
/// (PKCS#11 sessions are not for concurrent use).
pub struct Pkcs11Signer {
    session: Mutex<Session>,
    key: ObjectHandle,
    scheme: Scheme,
    public: PublicKey,
    token: String,
    object: String,
    module: Module,
}

impl std::fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("module", &self.module.path())
            .field("token", &self.token)
            .field("object", &self.object)
            .field("public", &self.public)
            .finish()
    }
}

impl Pkcs11Signer {
    /// Loads the module (the URI's `module-path`, else `default_module`), finds the token and
    /// the private key the URI names, logs in (the URI's `pin-value`, else what `pin` gives;
    /// asked only when the token needs a PIN) and reads the public key.
    ///
    /// ECDSA P-256 and P-384 and RSA keys are supported.
    pub fn open(
        uri: &Pkcs11Uri,
        default_module: Option<&Path>,
        pin: &dyn Fn(&TokenInfo) -> Option<SecretString>,
    ) -> Result<Pkcs11Signer, Pkcs11Error> {
        let module = load_module(uri, default_module)?;
        if matches!(uri.object_type, Some(t) if t != ObjectType::Private) {
            return Err(Pkcs11Error::UnusableKey {
                key: uri.object_selector(),
                token: uri.token.clone().unwrap_or_default(),
                reason: "the URI names another type of object than type=private; signing \
                         needs the private key"
                    .into(),
            });
        }
        let (slot, token) = module.find_token(uri)?;
        let session = module.login(slot, &token, uri.pin_value.as_ref(), pin)?;
        let key = find_private_key(&module, &session, &token, uri)?;
        let (public, scheme, object) = read_key(&module, &session, slot, &token, key)?;
        Ok(Pkcs11Signer {
            session: Mutex::new(session),
            key,
            scheme,
            public,
            token: token.label,
            object,
            module,
        })
    }

    /// The token's label.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The private key's label and id, for messages.
    pub fn object(&self) -> &str {
        &self.object
    }

    fn backend(&self, operation: &str, reason: String) -> SignError {
        SignError::Backend {
            key_id: self.public.id().clone(),
            reason: format!(
                "PKCS#11 token \"{}\", key {}: {operation}: {reason}",
                self.token, self.object
            ),
            source: None,
        }
    }
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let session = self
            .session
            .lock()
            .map_err(|_| self.backend("signing", "an earlier signing call panicked".into()))?;
        let sign = |mechanism: &Mechanism, data: &[u8]| {
            session
                .sign(mechanism, self.key, data)
                .map_err(|e| self.backend("C_Sign", short_reason(&e)))
        };
        let signature = match self.scheme {
            Scheme::EcdsaSha256 => {
                let raw = sign(&Mechanism::Ecdsa, &sha2::Sha256::digest(message))?;
                self.public.ecdsa_der_from_raw(&raw)?
            }
            Scheme::EcdsaSha384 => {
                let raw = sign(&Mechanism::Ecdsa, &sha2::Sha384::digest(message))?;
                self.public.ecdsa_der_from_raw(&raw)?
            }
            Scheme::RsaSha256Pkcs => sign(&Mechanism::Sha256RsaPkcs, message)?,
            Scheme::RsaPkcsDigestInfo => {
                let mut info = SHA256_DIGEST_INFO.to_vec();
                info.extend_from_slice(&sha2::Sha256::digest(message));
                sign(&Mechanism::RsaPkcs, &info)?
            }
        };
        // A signature the public key does not verify would be pushed and then never accepted;
        // a token pairing a public key object with another private key is how that happens.
        self.public
            .verify(message, &signature)
            .map_err(|_| SignError::NotMatchingPublicKey {
                key_id: self.public.id().clone(),
            })?;
        Ok(signature)
    }
}

/// Reads the public key of the private key `uri` names, for `signet public-key`: like
/// [`Pkcs11Signer::open`], and the same checks.
pub fn public_key(
    uri: &Pkcs11Uri,
    default_module: Option<&Path>,
    pin: &dyn Fn(&TokenInfo) -> Option<SecretString>,
) -> Result<PublicKey, Pkcs11Error> {
    Pkcs11Signer::open(uri, default_module, pin).map(|signer| signer.public)
}

/// Loads the module the URI names, else `default_module`.
pub fn load_module(uri: &Pkcs11Uri, default_module: Option<&Path>) -> Result<Module, Pkcs11Error> {
    let path = uri
        .module_path
        .as_deref()
        .or(default_module)
        .ok_or(Pkcs11Error::NoModule)?;
    Module::load(path)
}

fn find_private_key(
    module: &Module,
    session: &Session,
    token: &TokenInfo,
    uri: &Pkcs11Uri,
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    let mut found = module.find(session, &template)?;
    let describe = |objects: &[ObjectHandle]| -> Result<Vec<String>, Pkcs11Error> {
        objects
            .iter()
            .map(|o| label_and_id(module, session, *o).map(|(l, i)| describe_object(&l, &i)))
            .collect()
    };
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let all = module.find(session, &[Attribute::Class(ObjectClass::PRIVATE_KEY)])?;
            Err(Pkcs11Error::KeyNotFound {
                selector: uri.object_selector(),
                token: token.label.clone(),
                available: describe(&all)?,
            })
        }
        _ => Err(Pkcs11Error::KeyAmbiguous {
            selector: uri.object_selector(),
            token: token.label.clone(),
            matching: describe(&found)?,
        }),
    }
}

fn label_and_id(
    module: &Module,
    session: &Session,
    object: ObjectHandle,
) -> Result<(Vec<u8>, Vec<u8>), Pkcs11Error> {
    let mut label = Vec::new();
    let mut id = Vec::new();
    for attribute in session
        .get_attributes(object, &[AttributeType::Label, AttributeType::Id])
        .map_err(|e| module.call_error("reading key attributes", e))?
    {
        match attribute {
            Attribute::Label(l) => label = l,
            Attribute::Id(i) => id = i,
            _ => {}
        }
    }
    Ok((label, id))
}

/// The key's public half, how to sign with it, and its description.
fn read_key(
    module: &Module,
    session: &Session,
    slot: Slot,
    token: &TokenInfo,
    key: ObjectHandle,
) -> Result<(PublicKey, Scheme, String), Pkcs11Error> {
    let attributes = session
        .get_attributes(
            key,
            &[
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::Sign,
                AttributeType::AlwaysAuthenticate,
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(|e| module.call_error("reading key attributes", e))?;
    let (mut label, mut id, mut key_type) = (Vec::new(), Vec::new(), None);
    let (mut can_sign, mut always_authenticate) = (true, false);
    let (mut params, mut point, mut modulus, mut exponent) = (None, None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::Label(l) => label = l,
            Attribute::Id(i) => id = i,
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Sign(s) => can_sign = s,
            Attribute::AlwaysAuthenticate(a) => always_authenticate = a,
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    let object = describe_object(&label, &id);
    let unusable = |reason: &str| Pkcs11Error::UnusableKey {
        key: object.clone(),
        token: token.label.clone(),
        reason: reason.to_string(),
    };
    if !can_sign {
        return Err(unusable("its CKA_SIGN is false"));
    }
    if always_authenticate {
        return Err(unusable(
            "it needs the PIN again for every signature (CKA_ALWAYS_AUTHENTICATE), which signet \
             does not support",
        ));
    }
    let public_error = |reason: String| Pkcs11Error::PublicKey {
        key: object.clone(),
        token: token.label.clone(),
        reason,
    };
    let (public, scheme) = match key_type {
        Some(KeyType::EC) => {
            let params = params.ok_or_else(|| public_error("no CKA_EC_PARAMS".into()))?;
            let scheme = match curve_name(&params) {
                Some("P-256") => Scheme::EcdsaSha256,
                Some("P-384") => Scheme::EcdsaSha384,
                _ => {
                    return Err(unusable(
                        "its curve is not P-256 or P-384 (the curves signet signs with)",
                    ));
                }
            };
            // PKCS#11 keeps the point on the public key object; some tokens copy it onto the
            // private key as well.
            let point = match point {
                Some(point) => point,
                None => public_attribute(module, session, &label, &id, AttributeType::EcPoint)?
                    .ok_or_else(|| {
                        public_error(
                            "no public key object with the same id or label holds its \
                             CKA_EC_POINT"
                                .into(),
                        )
                    })?,
            };
            let public = PublicKey::from_ec_point(&params, &point)
                .map_err(|e| public_error(e.to_string()))?;
            Ok((public, scheme))
        }
        Some(KeyType::RSA) => {
            let (modulus, exponent) = match (modulus, exponent) {
                (Some(m), Some(e)) => (m, e),
                _ => {
                    let m = public_attribute(module, session, &label, &id, AttributeType::Modulus)?;
                    let e = public_attribute(
                        module,
                        session,
                        &label,
                        &id,
                        AttributeType::PublicExponent,
                    )?;
                    m.zip(e).ok_or_else(|| {
                        public_error("neither it nor a public key object gives the modulus".into())
                    })?
                }
            };
            let public = PublicKey::from_rsa_components(&modulus, &exponent)
                .map_err(|e| public_error(e.to_string()))?;
            let mechanisms = module.mechanisms(slot)?;
            let scheme = if mechanisms.contains(&MechanismType::SHA256_RSA_PKCS) {
                Scheme::RsaSha256Pkcs
            } else if mechanisms.contains(&MechanismType::RSA_PKCS) {
                Scheme::RsaPkcsDigestInfo
            } else {
                return Err(unusable(
                    "the token offers neither CKM_SHA256_RSA_PKCS nor CKM_RSA_PKCS",
                ));
            };
            Ok((public, scheme))
        }
        Some(other) => Err(unusable(&format!(
            "it is a {other} key; signet signs with EC (P-256, P-384) and RSA keys"
        ))),
        None => Err(unusable("the token does not say its key type")),
    }?;
    if public.algorithm() == KeyAlgorithm::Rsa && public.rsa_bits().is_some_and(|b| b < 2048) {
        return Err(unusable("RSA keys shorter than 2048 bits are not used"));
    }
    Ok((public, scheme, object))
}

/// One attribute of the public key object paired with a private key: the one with the same
/// `CKA_ID`, else (no id) the same label.
fn public_attribute(
    module: &Module,
    session: &Session,
    label: &[u8],
    id: &[u8],
    which: AttributeType,
) -> Result<Option<Vec<u8>>, Pkcs11Error> {
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    if id.is_empty() {
        template.push(Attribute::Label(label.to_vec()));
    } else {
        template.push(Attribute::Id(id.to_vec()));
    }
    let found = module.find(session, &template)?;
    let [object] = found.as_slice() else {
        return Ok(None);
    };
    let attributes = session
        .get_attributes(*object, &[which])
        .map_err(|e| module.call_error("reading public key attributes", e))?;
    Ok(attributes.into_iter().find_map(|a| match a {
        Attribute::EcPoint(v) | Attribute::Modulus(v) | Attribute::PublicExponent(v) => Some(v),
        _ => None,
    }))
}
