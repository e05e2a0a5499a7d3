//! OpenPGP keys and signed messages, for Google Binary Authorization's PGP attestations.
//!
//! A Binary Authorization attestor names its PGP keys by an ASCII-armoured public key
//! (`asciiArmoredPgpPublicKey`) and their v4 fingerprint; an attestation is the payload signed
//! with `gpg --armor --sign` (a signed message carrying the payload, not a detached signature).
//! See <https://cloud.google.com/binary-authorization/docs/creating-attestors-console#pgp>.
//!
//! The OpenPGP formats and cryptography are rPGP's (the `pgp` crate); this module adds what rPGP
//! deliberately leaves to applications (its README, "OpenPGP semantics"): which key may sign,
//! whether it is bound to the certificate, revoked or expired. Everything fails closed:
//!
//! - inputs over [`MAX_PGP_BYTES`] are refused before parsing, and so is a payload that
//!   decompresses to more than that;
//! - a public key block holds exactly one key, v4 only (what Binary Authorization fingerprints);
//! - a revoked primary key (a valid key revocation signature, whatever its reason) rejects every
//!   signature; so does a primary key whose newest self-signature says it has expired;
//! - a subkey signs only if its newest valid binding signature gives it the signing flag, carries
//!   a valid back-signature, is not expired, and no valid subkey revocation exists;
//! - signatures use SHA-256 or stronger (MD5, SHA-1, RIPEMD-160 and SHA-224 are refused, also on
//!   binding signatures).
//!
//! Revocations by designated third-party revokers cannot be checked without the revoker's key and
//! are not considered.

use std::fmt;
use std::io::Read as _;
use std::time::{Duration, SystemTime};

use pgp::armor::{BlockType, Dearmor, DearmorOptions};
use pgp::composed::{
    ArmorOptions, Deserializable as _, DetachedSignature, Message, MessageBuilder, PublicOrSecret,
    SignedPublicKey, SignedPublicSubKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{RevocationCode, Signature, SignatureType, SubpacketData};
use pgp::types::{Fingerprint, KeyDetails, KeyId, KeyVersion, Password, SigningKey, Tag};

/// The largest armoured key, armoured or binary message, or signed payload accepted (1 MiB).
///
/// Binary Authorization payloads are a few hundred bytes of JSON and keys a few kilobytes; the
/// bound keeps a hostile attestation from costing memory or time, including through compression.
pub const MAX_PGP_BYTES: usize = 1 << 20;

/// Everything that can go wrong loading OpenPGP keys, verifying or making signed messages.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PgpError {
    /// An input over [`MAX_PGP_BYTES`], refused before parsing.
    #[error("{what} is {size} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size in bytes (for a decompressed payload: the bytes read before giving up).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The ASCII armour is broken: no `-----BEGIN PGP …-----` line, bad base64, a wrong CRC, or
    /// cut short (no matching `-----END PGP …-----` line).
    #[error("malformed OpenPGP ascii armour: {reason}")]
    Armor {
        /// What the armour decoder said.
        reason: String,
    },
    /// The packets inside are not a well-formed key or message.
    #[error("malformed OpenPGP {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// An armoured block of another kind than expected (a message where a key belongs, say).
    #[error("expected {expected}, found an armoured \"{found}\" block")]
    WrongBlock {
        /// What was expected, in words.
        expected: &'static str,
        /// The armour label found.
        found: String,
    },
    /// A secret key was given where a public key belongs.
    #[error(
        "expected an OpenPGP public key, found a secret (private) key: give the public key \
         (gpg --armor --export KEY), never the secret one"
    )]
    SecretKeyGiven,
    /// A public key was given where a secret key is needed.
    #[error(
        "expected an OpenPGP secret key, found a public key (export the secret key with \
         gpg --armor --export-secret-keys KEY)"
    )]
    PublicKeyGiven,
    /// Not exactly one key in a key block.
    #[error("expected exactly one OpenPGP key in the block, found {found}")]
    KeyCount {
        /// How many keys the block holds.
        found: usize,
    },
    /// A key version other than 4.
    #[error(
        "unsupported OpenPGP key version {version} for key {fingerprint}: only version 4 keys are \
         accepted"
    )]
    KeyVersion {
        /// The key's version.
        version: u8,
        /// The key's fingerprint, uppercase hex.
        fingerprint: String,
    },
    /// The passphrase does not unlock the secret key.
    #[error("wrong passphrase for OpenPGP secret key {fingerprint}")]
    WrongPassphrase {
        /// The fingerprint of the (sub)key that would not unlock.
        fingerprint: String,
    },
    /// Neither the primary key nor any valid subkey may sign.
    #[error("OpenPGP key {fingerprint} has no usable signing key (primary or subkey)")]
    NoSigningKey {
        /// The primary key's fingerprint.
        fingerprint: String,
    },
    /// The primary key carries no valid self-signature, so nothing about it can be trusted.
    #[error(
        "OpenPGP key {fingerprint} has no valid self-signature (a user id or direct-key \
         signature by the key itself, with SHA-256 or stronger)"
    )]
    NoSelfSignature {
        /// The primary key's fingerprint.
        fingerprint: String,
    },
    /// The primary key or the signing subkey has expired.
    #[error("OpenPGP key {fingerprint} expired at {}", humantime::format_rfc3339_seconds(*at))]
    Expired {
        /// The fingerprint of the expired (sub)key.
        fingerprint: String,
        /// When it expired.
        at: SystemTime,
    },
    /// The primary key or the signing subkey is revoked.
    #[error("OpenPGP key {fingerprint} is revoked: {reason}")]
    Revoked {
        /// The fingerprint of the revoked (sub)key.
        fingerprint: String,
        /// The reason given in the revocation, or "no reason given".
        reason: String,
    },
    /// The key that made a signature is not allowed to sign.
    #[error("OpenPGP key {fingerprint} may not make signatures: {reason}")]
    NotSigningCapable {
        /// The fingerprint of the (sub)key.
        fingerprint: String,
        /// Why not.
        reason: String,
    },
    /// A message without any signature.
    #[error("the OpenPGP message is not signed")]
    NotSigned,
    /// A detached signature where a signed message belongs.
    #[error(
        "expected a signed OpenPGP message (gpg --sign) carrying the payload, found a detached \
         signature (gpg --detach-sign)"
    )]
    Detached,
    /// A signature by this key that does not verify: the message was altered or the signature
    /// is corrupt.
    #[error("OpenPGP signature by key {fingerprint} does not verify: {reason}")]
    BadSignature {
        /// The fingerprint of the (sub)key the signature claims.
        fingerprint: String,
        /// What failed.
        reason: String,
    },
    /// The message is signed, but not by this key (nor any of its subkeys).
    #[error("the OpenPGP message is signed by {issuer}, not by this key")]
    UnknownSigner {
        /// The issuers the signatures name (fingerprints or key ids), comma-separated.
        issuer: String,
    },
    /// The signature itself has expired.
    #[error("the OpenPGP signature expired at {}", humantime::format_rfc3339_seconds(*at))]
    SignatureExpired {
        /// When it expired.
        at: SystemTime,
    },
    /// Something signet does not accept: an algorithm, a message shape, a signature type.
    #[error("unsupported OpenPGP input: {what}")]
    Unsupported {
        /// What, in words.
        what: String,
    },
    /// Making a signature failed.
    #[error("OpenPGP signing failed: {reason}")]
    Signing {
        /// What rPGP said.
        reason: String,
    },
}

/// An OpenPGP public key (certificate) from an ASCII-armoured block, as Binary Authorization's
/// `asciiArmoredPgpPublicKey`.
///
/// Loading checks the form only; whether the key is revoked or expired is decided at each
/// verification, against the current time.
#[derive(Clone)]
pub struct PgpPublicKey {
    key: SignedPublicKey,
    fingerprint: String,
}

impl fmt::Debug for PgpPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgpPublicKey")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PgpPublicKey {
    /// Reads an ASCII-armoured public key block (`gpg --armor --export KEY`) holding exactly one
    /// version 4 key.
    pub fn from_armor(text: &str) -> Result<PgpPublicKey, PgpError> {
        check_size("armoured public key", text.len())?;
        let bytes = dearmor(text.as_bytes(), |typ| match typ {
            BlockType::PublicKey => Ok(()),
            BlockType::PrivateKey => Err(PgpError::SecretKeyGiven),
            other => Err(PgpError::WrongBlock {
                expected: "an OpenPGP public key (PGP PUBLIC KEY BLOCK)",
                found: other.to_string(),
            }),
        })?;
        match single_key(&bytes, "public key")? {
            PublicOrSecret::Public(key) => Self::new(key),
            PublicOrSecret::Secret(_) => Err(PgpError::SecretKeyGiven),
        }
    }

    fn new(key: SignedPublicKey) -> Result<PgpPublicKey, PgpError> {
        let fingerprint = fingerprint_hex(&key.primary_key.fingerprint());
        if key.primary_key.version() != KeyVersion::V4 {
            return Err(PgpError::KeyVersion {
                version: u8::from(key.primary_key.version()),
                fingerprint,
            });
        }
        Ok(PgpPublicKey { key, fingerprint })
    }

    /// Primary key v4 fingerprint, 40 uppercase hex chars (what Binary Authorization uses as the
    /// key's id).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Whether `id` names this key: its fingerprint or the 16-hex long key id of the primary key
    /// or of any subkey, case-insensitive, optional `0x` prefix, spaces ignored.
    pub fn matches_id(&self, id: &str) -> bool {
        let mut id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
        if id.starts_with("0x") || id.starts_with("0X") {
            id.drain(..2);
        }
        let id = id.to_ascii_uppercase();
        if id.is_empty() {
            return false;
        }
        id == self.fingerprint
            || id == key_id_hex(&self.key.primary_key.legacy_key_id())
            || self
                .key
                .public_subkeys
                .iter()
                .any(|sub| id == key_id_hex(&sub.key.legacy_key_id()))
    }

    /// Verifies a signed (NOT detached) OpenPGP message, armoured or binary (what `gpg --sign` /
    /// `gpg --armor --sign` write), made by the primary key or a signing-capable subkey that is
    /// bound to it; returns the literal data (the signed payload bytes, exactly).
    pub fn verify_message(&self, message: &[u8]) -> Result<Vec<u8>, PgpError> {
        self.verify_message_at(message, SystemTime::now())
    }

    /// [`Self::verify_message`] with revocation and expiry judged at `now`.
    pub(crate) fn verify_message_at(
        &self,
        message: &[u8],
        now: SystemTime,
    ) -> Result<Vec<u8>, PgpError> {
        let (msg, payload) = read_signed_literal(message)?;
        let Message::Signed { reader, .. } = &msg else {
            // Reading does not change the shape checked above.
            return Err(PgpError::NotSigned);
        };
        let Some(signatures) = reader.signatures() else {
            return Err(PgpError::Malformed {
                what: "message",
                reason: "the signature packets could not be read".into(),
            });
        };
        if signatures.is_empty() {
            return Err(PgpError::NotSigned);
        }

        // Signatures that name one of our components (or name no issuer at all).
        let components = self.components();
        let mut ours = Vec::new();
        let mut issuers = Vec::new();
        for (index, full) in signatures.iter().enumerate() {
            let sig = full.signature();
            let named = issuer_names(sig);
            let matching: Vec<usize> = components
                .iter()
                .enumerate()
                .filter(|(_, c)| named.is_empty() || c.named_by(sig))
                .map(|(i, _)| i)
                .collect();
            if matching.is_empty() {
                issuers.extend(named);
            } else {
                ours.push((index, matching, named.is_empty()));
            }
        }
        if ours.is_empty() {
            issuers.dedup();
            return Err(PgpError::UnknownSigner {
                issuer: issuers.join(", "),
            });
        }

        // The primary key must be valid at all before any of its signatures counts.
        let primary = primary_state(&self.key, now)?;

        let mut first_error = None;
        let mut anonymous_failed = false;
        for (index, matching, anonymous) in ours {
            let Some(sig) = reader.signature(index) else {
                continue;
            };
            for component in matching {
                let Some(c) = components.get(component) else {
                    continue;
                };
                let result = check_message_signature(sig, now).and_then(|()| {
                    c.may_sign(&self.key, &primary, now)?;
                    msg.verify_nested_explicit(index, c.verifier())
                        .map(|_| ())
                        .map_err(|e| PgpError::BadSignature {
                            fingerprint: c.fingerprint(),
                            reason: e.to_string(),
                        })
                });
                match result {
                    Ok(()) => return Ok(payload),
                    Err(_) if anonymous => anonymous_failed = true,
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if anonymous_failed => Err(PgpError::UnknownSigner {
                issuer: "a key the signature does not name (no issuer recorded)".into(),
            }),
            None => Err(PgpError::NotSigned),
        }
    }

    /// The primary key and every subkey, as verification candidates.
    fn components(&self) -> Vec<Component<'_>> {
        std::iter::once(Component::Primary(&self.key))
            .chain(self.key.public_subkeys.iter().map(Component::Subkey))
            .collect()
    }
}

/// A secret key for signing, from an armoured secret key block, unlocked with a passphrase (may
/// be empty for an unprotected key).
///
/// The secret material is zeroized on drop (rPGP's secret key packets are `ZeroizeOnDrop`) and
/// never shown: `Debug` prints the fingerprint only.
pub struct PgpSecretKey {
    key: SignedSecretKey,
    signer: Signer,
    public: PgpPublicKey,
}

/// Which component of the secret key signs.
#[derive(Clone, Copy)]
enum Signer {
    Primary,
    Subkey(usize),
}

impl fmt::Debug for PgpSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgpSecretKey")
            .field("fingerprint", &self.public.fingerprint)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl PgpSecretKey {
    /// Reads an ASCII-armoured secret key block (`gpg --armor --export-secret-keys KEY`), picks
    /// the primary key if it may sign (else the newest valid signing subkey) and unlocks it with
    /// `passphrase`. A revoked or expired key is refused.
    pub fn from_armor(text: &str, passphrase: &str) -> Result<PgpSecretKey, PgpError> {
        Self::from_armor_at(text, passphrase, SystemTime::now())
    }

    fn from_armor_at(
        text: &str,
        passphrase: &str,
        now: SystemTime,
    ) -> Result<PgpSecretKey, PgpError> {
        check_size("armoured secret key", text.len())?;
        let bytes = dearmor(text.as_bytes(), |typ| match typ {
            BlockType::PrivateKey => Ok(()),
            BlockType::PublicKey => Err(PgpError::PublicKeyGiven),
            other => Err(PgpError::WrongBlock {
                expected: "an OpenPGP secret key (PGP PRIVATE KEY BLOCK)",
                found: other.to_string(),
            }),
        })?;
        let mut key = match single_key(&bytes, "secret key")? {
            PublicOrSecret::Secret(key) => key,
            PublicOrSecret::Public(_) => return Err(PgpError::PublicKeyGiven),
        };
        let public = PgpPublicKey::new(key.to_public_key())?;
        let primary = primary_state(&public.key, now)?;

        let signer = if Component::Primary(&public.key)
            .may_sign(&public.key, &primary, now)
            .is_ok()
        {
            Signer::Primary
        } else {
            // The newest usable signing subkey that we hold the secret of.
            let mut best: Option<(usize, SystemTime)> = None;
            for (i, sub) in key.secret_subkeys.iter().enumerate() {
                let public_sub = sub.signed_public_key();
                if Component::Subkey(&public_sub)
                    .may_sign(&public.key, &primary, now)
                    .is_err()
                {
                    continue;
                }
                let created = SystemTime::from(sub.key.created_at());
                if best.is_none_or(|(_, t)| created > t) {
                    best = Some((i, created));
                }
            }
            match best {
                Some((i, _)) => Signer::Subkey(i),
                None => {
                    return Err(PgpError::NoSigningKey {
                        fingerprint: public.fingerprint.clone(),
                    });
                }
            }
        };

        // Unlock the signing component for good (rPGP keeps plain secret parameters zeroized on
        // drop); the others stay locked.
        let password = Password::from(passphrase);
        let unlocked =
            match signer {
                Signer::Primary => key.primary_key.remove_password(&password).map_err(|_| {
                    PgpError::WrongPassphrase {
                        fingerprint: public.fingerprint.clone(),
                    }
                }),
                Signer::Subkey(i) => match key.secret_subkeys.get_mut(i) {
                    Some(sub) => {
                        let fingerprint = fingerprint_hex(&sub.key.fingerprint());
                        sub.key
                            .remove_password(&password)
                            .map_err(|_| PgpError::WrongPassphrase { fingerprint })
                    }
                    None => Err(PgpError::NoSigningKey {
                        fingerprint: public.fingerprint.clone(),
                    }),
                },
            };
        unlocked?;
        Ok(PgpSecretKey {
            key,
            signer,
            public,
        })
    }

    /// The primary key's fingerprint, 40 uppercase hex chars.
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }

    /// The public half: the certificate that verifies this key's messages.
    pub fn public_key(&self) -> PgpPublicKey {
        self.public.clone()
    }

    /// A signed (not detached) armoured OpenPGP message containing `payload` as literal data,
    /// binary mode, signed with the primary key if it can sign (else a signing subkey), SHA-256
    /// or stronger; `gpg --verify` accepts it and `gpg --decrypt` prints exactly `payload`.
    pub fn sign_message(&self, payload: &[u8]) -> Result<String, PgpError> {
        check_size("payload", payload.len())?;
        let signing_key: &dyn SigningKey = match self.signer {
            Signer::Primary => &self.key.primary_key,
            Signer::Subkey(i) => match self.key.secret_subkeys.get(i) {
                Some(sub) => &sub.key,
                None => {
                    return Err(PgpError::NoSigningKey {
                        fingerprint: self.fingerprint(),
                    });
                }
            },
        };
        let hash = match signing_key.hash_alg() {
            strong @ (HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512
            | HashAlgorithm::Sha3_256
            | HashAlgorithm::Sha3_512) => strong,
            _ => HashAlgorithm::Sha256,
        };
        let mut builder = MessageBuilder::from_bytes("", payload.to_vec());
        builder.sign(signing_key, Password::empty(), hash);
        builder
            .to_armored_string(rand_core_06::OsRng, ArmorOptions::default())
            .map_err(|e| PgpError::Signing {
                reason: e.to_string(),
            })
    }
}

/// A key or subkey of a certificate that may have made a signature.
enum Component<'a> {
    Primary(&'a SignedPublicKey),
    Subkey(&'a SignedPublicSubKey),
}

impl Component<'_> {
    fn fingerprint(&self) -> String {
        match self {
            Component::Primary(k) => fingerprint_hex(&k.primary_key.fingerprint()),
            Component::Subkey(s) => fingerprint_hex(&s.key.fingerprint()),
        }
    }

    fn details(&self) -> (Fingerprint, KeyId) {
        match self {
            Component::Primary(k) => (k.primary_key.fingerprint(), k.primary_key.legacy_key_id()),
            Component::Subkey(s) => (s.key.fingerprint(), s.key.legacy_key_id()),
        }
    }

    fn verifier(&self) -> &dyn pgp::types::VerifyingKey {
        match self {
            Component::Primary(k) => &k.primary_key,
            Component::Subkey(s) => &s.key,
        }
    }

    /// Whether `sig` names this component as its issuer (fingerprint or key id).
    fn named_by(&self, sig: &Signature) -> bool {
        let (fingerprint, key_id) = self.details();
        sig.issuer_fingerprint().iter().any(|f| **f == fingerprint)
            || sig.issuer_key_id().iter().any(|k| **k == key_id)
    }

    /// Whether this component may sign data now, given the primary key's state.
    fn may_sign(
        &self,
        cert: &SignedPublicKey,
        primary: &PrimaryState,
        now: SystemTime,
    ) -> Result<(), PgpError> {
        match self {
            Component::Primary(_) => {
                if primary.flags_present && !primary.flags_sign {
                    return Err(PgpError::NotSigningCapable {
                        fingerprint: self.fingerprint(),
                        reason: "its key flags do not include signing".into(),
                    });
                }
                Ok(())
            }
            Component::Subkey(sub) => subkey_may_sign(cert, sub, now),
        }
    }
}

/// What the primary key's self-signatures say, once it is known to be neither revoked nor
/// expired.
struct PrimaryState {
    flags_present: bool,
    flags_sign: bool,
}

/// Checks the primary key at `now`: not revoked, has a valid self-signature, not expired.
fn primary_state(cert: &SignedPublicKey, now: SystemTime) -> Result<PrimaryState, PgpError> {
    let primary = &cert.primary_key;
    let fingerprint = fingerprint_hex(&primary.fingerprint());

    // Revocation first: a revoked key is revoked whatever its self-signatures say.
    for sig in cert
        .details
        .revocation_signatures
        .iter()
        .chain(&cert.details.direct_signatures)
    {
        if sig.typ() == Some(SignatureType::KeyRevocation)
            && strong_hash(sig)
            && sig.verify_key(primary).is_ok()
        {
            return Err(PgpError::Revoked {
                fingerprint,
                reason: revocation_reason(sig),
            });
        }
    }

    // The newest valid self-signature: direct-key signatures and user id certifications.
    let direct = cert
        .details
        .direct_signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::Key))
        .filter(|sig| strong_hash(sig) && sig.verify_key(primary).is_ok());
    let certifications = cert.details.users.iter().flat_map(|user| {
        user.signatures
            .iter()
            .filter(|sig| {
                matches!(
                    sig.typ(),
                    Some(
                        SignatureType::CertGeneric
                            | SignatureType::CertPersona
                            | SignatureType::CertCasual
                            | SignatureType::CertPositive
                    )
                )
            })
            .filter(|sig| {
                strong_hash(sig)
                    && sig
                        .verify_certification(primary, Tag::UserId, &user.id)
                        .is_ok()
            })
    });
    let newest = newest_current(direct.chain(certifications), now);
    let Some((selfsig, _)) = newest else {
        return Err(PgpError::NoSelfSignature { fingerprint });
    };
    if let Some(at) = key_expiry(SystemTime::from(primary.created_at()), selfsig)
        && now >= at
    {
        return Err(PgpError::Expired { fingerprint, at });
    }
    let (flags_present, flags_sign) = key_flags(selfsig);
    Ok(PrimaryState {
        flags_present,
        flags_sign,
    })
}

/// Whether `sub` may sign at `now`: bound by a valid binding signature with the signing flag and
/// a valid back-signature, not revoked, not expired.
fn subkey_may_sign(
    cert: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    now: SystemTime,
) -> Result<(), PgpError> {
    let primary = &cert.primary_key;
    let fingerprint = fingerprint_hex(&sub.key.fingerprint());
    for sig in &sub.signatures {
        if sig.typ() == Some(SignatureType::SubkeyRevocation)
            && strong_hash(sig)
            && sig.verify_subkey_binding(primary, &sub.key).is_ok()
        {
            return Err(PgpError::Revoked {
                fingerprint,
                reason: revocation_reason(sig),
            });
        }
    }
    let bindings = sub.signatures.iter().filter(|sig| {
        sig.typ() == Some(SignatureType::SubkeyBinding)
            && strong_hash(sig)
            && sig.verify_subkey_binding(primary, &sub.key).is_ok()
    });
    let newest = newest_current(bindings, now);
    let Some((binding, _)) = newest else {
        return Err(PgpError::NotSigningCapable {
            fingerprint,
            reason: "the subkey has no valid binding signature from the primary key".into(),
        });
    };
    if !binding.key_flags().sign() {
        return Err(PgpError::NotSigningCapable {
            fingerprint,
            reason: "the subkey's key flags do not include signing".into(),
        });
    }
    // A signing subkey must sign the primary back, or anyone could claim someone else's subkey
    // (RFC 9580, 5.2.1: primary key binding signature).
    let backsig_ok = binding.embedded_signature().is_some_and(|back| {
        strong_hash(back) && back.verify_primary_key_binding(&sub.key, primary).is_ok()
    });
    if !backsig_ok {
        return Err(PgpError::NotSigningCapable {
            fingerprint,
            reason: "the subkey carries no valid back-signature (primary key binding)".into(),
        });
    }
    if let Some(at) = key_expiry(SystemTime::from(sub.key.created_at()), binding)
        && now >= at
    {
        return Err(PgpError::Expired { fingerprint, at });
    }
    Ok(())
}

/// The newest of `sigs` made by `now` and not expired by then, with its creation time.
fn newest_current<'s>(
    sigs: impl Iterator<Item = &'s Signature>,
    now: SystemTime,
) -> Option<(&'s Signature, SystemTime)> {
    let mut newest: Option<(&Signature, SystemTime)> = None;
    for sig in sigs {
        let Some(created) = sig.created().map(SystemTime::from) else {
            continue;
        };
        if created > now || signature_expired(sig, now).is_some() {
            continue;
        }
        if newest.is_none_or(|(_, t)| created > t) {
            newest = Some((sig, created));
        }
    }
    newest
}

/// Checks a data signature's own properties: type, hash strength, expiry.
fn check_message_signature(sig: &Signature, now: SystemTime) -> Result<(), PgpError> {
    match sig.typ() {
        Some(SignatureType::Binary | SignatureType::Text) => {}
        other => {
            return Err(PgpError::Unsupported {
                what: format!("signature type {other:?} over a message (expected binary or text)"),
            });
        }
    }
    if !strong_hash(sig) {
        return Err(PgpError::Unsupported {
            what: format!(
                "signature hash algorithm {} (SHA-256 or stronger is required)",
                sig.hash_alg()
                    .map_or_else(|| "unknown".to_owned(), |h| h.to_string())
            ),
        });
    }
    if let Some(at) = signature_expired(sig, now) {
        return Err(PgpError::SignatureExpired { at });
    }
    Ok(())
}

/// When the key that `selfsig` describes expires, if it does (created + key expiration time).
fn key_expiry(key_created: SystemTime, selfsig: &Signature) -> Option<SystemTime> {
    let secs = selfsig.key_expiration_time()?.as_secs();
    // Zero means "does not expire" (RFC 9580, 5.2.3.13).
    (secs != 0).then(|| key_created + Duration::from_secs(u64::from(secs)))
}

/// When `sig` expired, if it has expired by `now`.
fn signature_expired(sig: &Signature, now: SystemTime) -> Option<SystemTime> {
    let secs = sig.signature_expiration_time()?.as_secs();
    let created = SystemTime::from(sig.created()?);
    let at = created + Duration::from_secs(u64::from(secs));
    (secs != 0 && now >= at).then_some(at)
}

/// Whether the key flags subpacket is present, and whether it allows signing.
fn key_flags(sig: &Signature) -> (bool, bool) {
    let present = sig.config().is_some_and(|c| {
        c.hashed_subpackets()
            .any(|p| matches!(p.data, SubpacketData::KeyFlags(_)))
    });
    (present, sig.key_flags().sign())
}

/// Whether the signature uses a hash of at least 256 bits.
fn strong_hash(sig: &Signature) -> bool {
    matches!(
        sig.hash_alg(),
        Some(
            HashAlgorithm::Sha256
                | HashAlgorithm::Sha384
                | HashAlgorithm::Sha512
                | HashAlgorithm::Sha3_256
                | HashAlgorithm::Sha3_512
        )
    )
}

/// The reason a revocation gives, in words.
fn revocation_reason(sig: &Signature) -> String {
    let code = match sig.revocation_reason_code() {
        None | Some(RevocationCode::NoReason) => None,
        Some(RevocationCode::KeySuperseded) => Some("key superseded"),
        Some(RevocationCode::KeyCompromised) => Some("key compromised"),
        Some(RevocationCode::KeyRetired) => Some("key retired"),
        Some(_) => Some("other reason"),
    };
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .filter(|t| !t.is_empty());
    match (code, text) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(code), None) => code.to_owned(),
        (None, Some(text)) => text,
        (None, None) => "no reason given".to_owned(),
    }
}

/// The issuers a signature names, fingerprints preferred, for messages.
fn issuer_names(sig: &Signature) -> Vec<String> {
    let fingerprints: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| fingerprint_hex(f))
        .collect();
    if !fingerprints.is_empty() {
        return fingerprints;
    }
    sig.issuer_key_id()
        .iter()
        .map(|k| format!("key id {}", key_id_hex(k)))
        .collect()
}

fn fingerprint_hex(fingerprint: &Fingerprint) -> String {
    format!("{fingerprint:X}")
}

fn key_id_hex(id: &KeyId) -> String {
    hex::encode_upper(id)
}

fn check_size(what: &'static str, size: usize) -> Result<(), PgpError> {
    if size > MAX_PGP_BYTES {
        return Err(PgpError::TooLarge {
            what,
            size,
            max: MAX_PGP_BYTES,
        });
    }
    Ok(())
}

fn malformed(what: &'static str, e: &pgp::errors::Error) -> PgpError {
    PgpError::Malformed {
        what,
        reason: readable(&e.to_string()),
    }
}

/// Decodes an ASCII-armoured block whole: header, base64 body and footer, so a block cut short
/// is an armour error and not a shorter key.
///
/// The CRC-24 line is not checked: RFC 9580 (6.1) says not to, and rPGP 0.21's opt-in check
/// rejects every correct checksum (it updates a copy of its hasher). Corruption shows up as a
/// bad signature or malformed packets instead.
/// `accept` judges the block type before the body is decoded.
fn dearmor(
    text: &[u8],
    accept: impl FnOnce(&BlockType) -> Result<(), PgpError>,
) -> Result<Vec<u8>, PgpError> {
    let options = DearmorOptions::new().set_limit(MAX_PGP_BYTES);
    let mut dearmor = Dearmor::with_options(text, options);
    let armor_err = |e: &dyn fmt::Display| PgpError::Armor {
        reason: readable(&e.to_string()),
    };
    dearmor.read_header().map_err(|e| armor_err(&e))?;
    let typ = dearmor.typ.as_ref().ok_or_else(|| PgpError::Armor {
        reason: "no armour header line".into(),
    })?;
    accept(typ)?;
    let mut data = Vec::new();
    (&mut dearmor)
        .take(MAX_PGP_BYTES as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| armor_err(&e))?;
    check_size("decoded armour", data.len())?;
    Ok(data)
}

/// A parser message fit for people: rPGP's parser errors can carry the whole input as a list of
/// byte values; cut those off and keep what names the problem.
fn readable(reason: &str) -> String {
    let cut = reason.find(" Error(").or_else(|| reason.find("input: ["));
    let kept = match cut {
        Some(at) => reason
            .get(..at)
            .unwrap_or(reason)
            .trim_end_matches([':', ' ']),
        None => reason,
    };
    let mut kept: String = kept.chars().take(200).collect();
    if kept.is_empty() {
        kept = "the armour is damaged or truncated".into();
    }
    kept
}

/// Parses the packets of exactly one key.
fn single_key(bytes: &[u8], what: &'static str) -> Result<PublicOrSecret, PgpError> {
    // rPGP's messages for secret key packets are not known to be free of key material; say
    // only that parsing failed.
    let secret = what == "secret key";
    let fail = |e: pgp::errors::Error| PgpError::Malformed {
        what,
        reason: if secret {
            "the secret key packets could not be parsed".to_owned()
        } else {
            readable(&e.to_string())
        },
    };
    let keys = PublicOrSecret::from_bytes_many(bytes).map_err(fail)?;
    let mut found = Vec::new();
    for key in keys {
        found.push(key.map_err(fail)?);
    }
    if found.len() != 1 {
        return Err(PgpError::KeyCount { found: found.len() });
    }
    found.pop().ok_or(PgpError::KeyCount { found: 0 })
}

/// Parses a signed message (gpg's shapes, see [`PgpPublicKey::verify_message`]) and reads its
/// literal data, at most [`MAX_PGP_BYTES`]. Nothing is verified yet: the message is returned so
/// its signatures can be checked over what was read.
fn read_signed_literal(message: &[u8]) -> Result<(Message<'_>, Vec<u8>), PgpError> {
    check_size("OpenPGP message", message.len())?;
    let mut msg = parse_message(message)?;

    // gpg compresses before signing (Compressed{OnePassSig, Literal, Sig}); a signer may also
    // sign compressed data (Signed{Compressed{Literal}}). Two levels cover both shapes.
    for _ in 0..2 {
        let inner_compressed = match &msg {
            Message::Signed { reader, .. } => reader.get_ref().is_compressed(),
            _ => false,
        };
        if msg.is_compressed() || inner_compressed {
            msg = msg.decompress().map_err(|e| malformed("message", &e))?;
        }
    }
    match &msg {
        Message::Signed { reader, .. } if reader.get_ref().is_literal() => {}
        Message::Signed { .. } => {
            return Err(PgpError::Unsupported {
                what: "a signed message whose content is not literal data (nested signatures, \
                       encryption or deep compression)"
                    .into(),
            });
        }
        Message::Literal { .. } => return Err(PgpError::NotSigned),
        Message::Encrypted { .. } => {
            return Err(PgpError::Unsupported {
                what: "an encrypted message (Binary Authorization attestations are signed, \
                       not encrypted)"
                    .into(),
            });
        }
        Message::Compressed { .. } => {
            return Err(PgpError::Unsupported {
                what: "more than two levels of compression".into(),
            });
        }
    }

    // Read the literal data (this also hashes it for the signatures), at most the limit.
    let mut payload = Vec::new();
    // A read error leaves rPGP's signature reader in a state whose accessors panic: return
    // at once and only drop `msg` (dropping is fine).
    (&mut msg)
        .take(MAX_PGP_BYTES as u64 + 1)
        .read_to_end(&mut payload)
        .map_err(|e| PgpError::Malformed {
            what: "message",
            reason: e.to_string(),
        })?;
    if payload.len() > MAX_PGP_BYTES {
        return Err(PgpError::TooLarge {
            what: "signed payload",
            size: payload.len(),
            max: MAX_PGP_BYTES,
        });
    }
    Ok((msg, payload))
}

/// The payload a signed message carries, WITHOUT verifying any signature: for checks before
/// storage and for messages, never for a verdict.
pub fn unverified_literal_data(message: &[u8]) -> Result<Vec<u8>, PgpError> {
    read_signed_literal(message).map(|(_, payload)| payload)
}

/// Parses an armoured or binary message, telling detached signatures and other blocks apart.
fn parse_message(message: &[u8]) -> Result<Message<'_>, PgpError> {
    let start = message
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(message.len());
    let Some(&first) = message.get(start) else {
        return Err(PgpError::Malformed {
            what: "message",
            reason: "empty input".into(),
        });
    };
    if first & 0x80 != 0 {
        // Binary packets.
        let message = message.get(start..).unwrap_or(message);
        return match Message::from_bytes(message) {
            Ok(msg) => Ok(msg),
            Err(e) => {
                if DetachedSignature::from_bytes(message).is_ok() {
                    Err(PgpError::Detached)
                } else {
                    Err(malformed("message", &e))
                }
            }
        };
    }
    let data = dearmor(message, |typ| match typ {
        BlockType::Message | BlockType::File => Ok(()),
        BlockType::Signature => Err(PgpError::Detached),
        BlockType::CleartextMessage => Err(PgpError::Unsupported {
            what: "a cleartext-signed message (gpg --clearsign): sign with gpg --sign".into(),
        }),
        other => Err(PgpError::WrongBlock {
            expected: "a signed OpenPGP message (PGP MESSAGE)",
            found: other.to_string(),
        }),
    })?;
    // The message owns its source (a copy), so it outlives this function; the original stays
    // to tell a lone signature packet (an armoured detached signature) from garbage.
    match Message::from_bytes(std::io::Cursor::new(data.clone())) {
        Ok(msg) => Ok(msg),
        Err(e) if DetachedSignature::from_bytes(&data[..]).is_ok() => {
            let _ = e;
            Err(PgpError::Detached)
        }
        Err(e) => Err(malformed("message", &e)),
    }
}

#[cfg(test)]
mod tests {
    //! Keys and messages come from the real gpg (Debian's gnupg), made in a temporary GNUPGHOME
    //! per test, signed the way Google's Binary Authorization docs do it:
    //! `gpg --local-user KEY --armor --output sig.pgp --sign payload.json`.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::io::Write as _;
    use std::path::PathBuf;
    use std::process::{Command, Output, Stdio};

    use super::*;

    const PAYLOAD: &[u8] = br#"{"critical":{"identity":{"docker-reference":"gcr.io/p/app"},"image":{"docker-manifest-digest":"sha256:0d2b8f5f3bd0d1d6f0c7b1d7a1e1e3d6b3d4e5f60718293a4b5c6d7e8f901234"},"type":"Google cloud binauthz container signature"}}
"#;

    /// A throwaway gpg home; the agent it starts is stopped on drop.
    struct Gpg {
        home: tempfile::TempDir,
    }

    impl Drop for Gpg {
        fn drop(&mut self) {
            let _ = Command::new("gpgconf")
                .args(["--kill", "gpg-agent"])
                .env("GNUPGHOME", self.home.path())
                .output();
        }
    }

    impl Gpg {
        fn new() -> Gpg {
            match Command::new("gpg").arg("--version").output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!(
                    "gpg --version failed ({}); the OpenPGP tests need GnuPG: apt-get install gnupg",
                    out.status
                ),
                Err(e) => panic!(
                    "gpg not found ({e}); the OpenPGP tests need GnuPG: apt-get install gnupg"
                ),
            }
            Gpg {
                home: tempfile::Builder::new().prefix("gpg").tempdir().unwrap(),
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.home.path().join(name)
        }

        /// Runs gpg with `args` (and `stdin`), insisting on success.
        fn run_with(&self, args: &[&str], stdin: &[u8]) -> Output {
            let mut child = Command::new("gpg")
                .env("GNUPGHOME", self.home.path())
                .args(["--no-tty", "--pinentry-mode", "loopback"])
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(stdin).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "gpg {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }

        fn run(&self, args: &[&str]) -> Output {
            self.run_with(args, b"")
        }

        /// Generates a key and returns its fingerprint. `extra` goes before the command (for
        /// --faked-system-time).
        fn generate(
            &self,
            uid: &str,
            algo: &str,
            usage: &str,
            expire: &str,
            extra: &[&str],
        ) -> String {
            self.gen_with_passphrase(uid, algo, usage, expire, extra, "")
        }

        fn gen_with_passphrase(
            &self,
            uid: &str,
            algo: &str,
            usage: &str,
            expire: &str,
            extra: &[&str],
            passphrase: &str,
        ) -> String {
            let mut args = vec!["--batch", "--passphrase", passphrase];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--quick-gen-key", uid, algo, usage, expire]);
            self.run(&args);
            self.fingerprint(uid)
        }

        fn fingerprint(&self, uid: &str) -> String {
            let out = self.run(&["--batch", "--with-colons", "--list-keys", uid]);
            let text = String::from_utf8(out.stdout).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("fpr:"))
                .map(|l| l.trim_matches(':').to_owned())
                .unwrap()
        }

        /// Fingerprints of the subkeys of `uid`.
        fn subkey_fingerprints(&self, uid: &str) -> Vec<String> {
            let out = self.run(&["--batch", "--with-colons", "--list-keys", uid]);
            let text = String::from_utf8(out.stdout).unwrap();
            let mut in_sub = false;
            let mut fprs = Vec::new();
            for line in text.lines() {
                if line.starts_with("sub:") {
                    in_sub = true;
                } else if line.starts_with("pub:") {
                    in_sub = false;
                } else if let Some(f) = line.strip_prefix("fpr:")
                    && in_sub
                {
                    fprs.push(f.trim_matches(':').to_owned());
                }
            }
            fprs
        }

        fn export(&self, keys: &[&str]) -> String {
            let mut args = vec!["--batch", "--armor", "--export"];
            args.extend_from_slice(keys);
            String::from_utf8(self.run(&args).stdout).unwrap()
        }

        fn export_secret(&self, key: &str, passphrase: &str) -> String {
            let args = [
                "--batch",
                "--passphrase",
                passphrase,
                "--armor",
                "--export-secret-keys",
                key,
            ];
            String::from_utf8(self.run(&args).stdout).unwrap()
        }

        /// Signs `payload` from a file, as Binary Authorization's docs do; `extra` are further
        /// gpg options (--armor, --detach-sign, -z 0, --faked-system-time…).
        fn sign(&self, key: &str, payload: &[u8], extra: &[&str]) -> Vec<u8> {
            let input = self.path("payload.json");
            let output = self.path("sig.pgp");
            std::fs::write(&input, payload).unwrap();
            let _ = std::fs::remove_file(&output);
            let mut args = vec!["--batch", "--yes", "--passphrase", "", "--local-user", key];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["--output", output.to_str().unwrap()]);
            if !extra.contains(&"--detach-sign") && !extra.contains(&"--clearsign") {
                args.push("--sign");
            }
            args.push(input.to_str().unwrap());
            self.run(&args);
            std::fs::read(&output).unwrap()
        }

        fn armored_sign(&self, key: &str, payload: &[u8]) -> Vec<u8> {
            self.sign(key, payload, &["--armor"])
        }
    }

    fn public(gpg: &Gpg, fpr: &str) -> PgpPublicKey {
        PgpPublicKey::from_armor(&gpg.export(&[fpr])).unwrap()
    }

    #[test]
    fn rsa_signed_message_verifies_with_exact_payload() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("RSA <rsa@example.com>", "rsa3072", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        assert_eq!(key.fingerprint(), fpr);
        assert_eq!(key.fingerprint().len(), 40);
        let armored = gpg.armored_sign(&fpr, PAYLOAD);
        assert!(armored.starts_with(b"-----BEGIN PGP MESSAGE-----"));
        assert_eq!(key.verify_message(&armored).unwrap(), PAYLOAD);
        let binary = gpg.sign(&fpr, PAYLOAD, &[]);
        assert_eq!(key.verify_message(&binary).unwrap(), PAYLOAD);
    }

    #[test]
    fn ed25519_signed_message_verifies_with_exact_payload() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("Ed <ed@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        let armored = gpg.armored_sign(&fpr, PAYLOAD);
        assert_eq!(key.verify_message(&armored).unwrap(), PAYLOAD);
        // Uncompressed, and binary payload bytes that are not text.
        let odd: Vec<u8> = (0..=255u8).chain([0, 13, 10, 13]).collect();
        let plain = gpg.sign(&fpr, &odd, &["--armor", "-z", "0"]);
        assert_eq!(key.verify_message(&plain).unwrap(), odd);
        // Empty payload.
        let empty = gpg.armored_sign(&fpr, b"");
        assert_eq!(key.verify_message(&empty).unwrap(), b"");
    }

    #[test]
    fn nist_p256_signed_message_verifies() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("P256 <p@example.com>", "nistp256", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        assert_eq!(
            key.verify_message(&gpg.armored_sign(&fpr, PAYLOAD))
                .unwrap(),
            PAYLOAD
        );
    }

    #[test]
    fn subkey_signed_message_verifies_against_primary_certificate() {
        let gpg = Gpg::new();
        let uid = "Sub <sub@example.com>";
        let fpr = gpg.generate(uid, "ed25519", "cert", "0", &[]);
        gpg.run(&[
            "--batch",
            "--passphrase",
            "",
            "--quick-add-key",
            &fpr,
            "ed25519",
            "sign",
            "0",
        ]);
        let subs = gpg.subkey_fingerprints(uid);
        assert_eq!(subs.len(), 1);
        let key = public(&gpg, &fpr);
        let message = gpg.armored_sign(&fpr, PAYLOAD);
        assert_eq!(key.verify_message(&message).unwrap(), PAYLOAD);
        // The key is named by its fingerprint, and by the key id of primary and subkey.
        assert!(key.matches_id(&fpr));
        assert!(key.matches_id(&format!("0x{}", fpr.to_lowercase())));
        assert!(key.matches_id(&fpr[24..]));
        assert!(key.matches_id(&subs[0][24..]));
        let spaced: String = fpr
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(key.matches_id(&spaced));
        assert!(!key.matches_id(""));
        assert!(!key.matches_id("0x"));
        assert!(!key.matches_id(&fpr[..16]));
        assert!(!key.matches_id(&subs[0])); // a subkey fingerprint is not the key's id
    }

    #[test]
    fn message_signed_by_another_key_is_unknown_signer() {
        let gpg = Gpg::new();
        let ours = gpg.generate("Ours <ours@example.com>", "ed25519", "sign", "0", &[]);
        let theirs = gpg.generate("Theirs <theirs@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &ours);
        let err = key
            .verify_message(&gpg.armored_sign(&theirs, PAYLOAD))
            .unwrap_err();
        assert_eq!(
            err,
            PgpError::UnknownSigner {
                issuer: theirs.clone()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("the OpenPGP message is signed by {theirs}, not by this key")
        );
    }

    #[test]
    fn tampered_message_is_rejected() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("T <t@example.com>", "rsa3072", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        // Uncompressed: flip a byte of the literal payload itself.
        let mut plain = gpg.sign(&fpr, PAYLOAD, &["-z", "0"]);
        let at = plain
            .windows(PAYLOAD.len())
            .position(|w| w == PAYLOAD)
            .unwrap();
        plain[at + 20] ^= 0x01;
        let err = key.verify_message(&plain).unwrap_err();
        assert!(
            matches!(err, PgpError::BadSignature { ref fingerprint, .. } if *fingerprint == fpr),
            "{err:?}"
        );
        // Compressed (gpg's default): any flipped byte in the body fails somehow.
        let compressed = gpg.sign(&fpr, PAYLOAD, &[]);
        for i in [
            compressed.len() / 3,
            compressed.len() / 2,
            compressed.len() - 10,
        ] {
            let mut bad = compressed.clone();
            bad[i] ^= 0x40;
            assert!(
                key.verify_message(&bad).is_err(),
                "flipped byte {i} accepted"
            );
        }
    }

    #[test]
    fn detached_signature_is_a_clear_error() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("D <d@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        let armored = gpg.sign(&fpr, PAYLOAD, &["--armor", "--detach-sign"]);
        assert_eq!(
            key.verify_message(&armored).unwrap_err(),
            PgpError::Detached
        );
        let binary = gpg.sign(&fpr, PAYLOAD, &["--detach-sign"]);
        assert_eq!(key.verify_message(&binary).unwrap_err(), PgpError::Detached);
        assert!(
            PgpError::Detached
                .to_string()
                .contains("detached signature")
        );
        let clear = gpg.sign(&fpr, PAYLOAD, &["--clearsign"]);
        assert!(matches!(
            key.verify_message(&clear).unwrap_err(),
            PgpError::Unsupported { .. }
        ));
    }

    #[test]
    fn unsigned_message_is_not_signed() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("U <u@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        let input = gpg.path("payload.json");
        std::fs::write(&input, PAYLOAD).unwrap();
        let out = gpg.run(&[
            "--batch",
            "--armor",
            "--store",
            "--output",
            "-",
            input.to_str().unwrap(),
        ]);
        assert_eq!(
            key.verify_message(&out.stdout).unwrap_err(),
            PgpError::NotSigned
        );
    }

    #[test]
    fn truncated_armour_is_rejected() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("Cut <cut@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        let message = gpg.armored_sign(&fpr, PAYLOAD);
        for cut in [message.len() / 2, message.len() - 30, 40] {
            let err = key.verify_message(&message[..cut]).unwrap_err();
            assert!(
                matches!(err, PgpError::Armor { .. } | PgpError::Malformed { .. }),
                "cut at {cut}: {err:?}"
            );
        }
        let exported = gpg.export(&[&fpr]);
        for cut in [exported.len() / 2, exported.len() - 30] {
            let err = PgpPublicKey::from_armor(&exported[..cut]).unwrap_err();
            assert!(
                matches!(err, PgpError::Armor { .. } | PgpError::Malformed { .. }),
                "cut at {cut}: {err:?}"
            );
        }
        assert!(matches!(
            PgpPublicKey::from_armor("not a key").unwrap_err(),
            PgpError::Armor { .. }
        ));
    }

    #[test]
    fn secret_key_given_as_public_key_is_refused() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("S <s@example.com>", "ed25519", "sign", "0", &[]);
        let secret = gpg.export_secret(&fpr, "");
        let err = PgpPublicKey::from_armor(&secret).unwrap_err();
        assert_eq!(err, PgpError::SecretKeyGiven);
        assert!(err.to_string().contains("found a secret (private) key"));
        assert_eq!(
            PgpSecretKey::from_armor(&gpg.export(&[&fpr]), "").unwrap_err(),
            PgpError::PublicKeyGiven
        );
    }

    #[test]
    fn several_keys_in_one_block_are_refused() {
        let gpg = Gpg::new();
        let a = gpg.generate("A <a@example.com>", "ed25519", "sign", "0", &[]);
        let b = gpg.generate("B <b@example.com>", "ed25519", "sign", "0", &[]);
        assert_eq!(
            PgpPublicKey::from_armor(&gpg.export(&[&a, &b])).unwrap_err(),
            PgpError::KeyCount { found: 2 }
        );
    }

    #[test]
    fn expired_primary_key_is_rejected() {
        let gpg = Gpg::new();
        // Made on 2020-01-01, valid for one day; signed while valid.
        let fpr = gpg.generate(
            "Old <old@example.com>",
            "ed25519",
            "sign",
            "1d",
            &["--faked-system-time", "20200101T000000!"],
        );
        let message = gpg.sign(
            &fpr,
            PAYLOAD,
            &["--armor", "--faked-system-time", "20200101T120000!"],
        );
        let key = public(&gpg, &fpr);
        let err = key.verify_message(&message).unwrap_err();
        let PgpError::Expired {
            ref fingerprint,
            at,
        } = err
        else {
            panic!("expected Expired, got {err:?}");
        };
        assert_eq!(*fingerprint, fpr);
        assert_eq!(
            humantime::format_rfc3339_seconds(at).to_string(),
            "2020-01-02T00:00:00Z"
        );
        assert!(err.to_string().contains("expired at 2020-01-02T00:00:00Z"));
        // While it was valid, the same message verified.
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_880_000 + 3600);
        assert_eq!(key.verify_message_at(&message, then).unwrap(), PAYLOAD);
    }

    #[test]
    fn expired_signing_subkey_is_rejected() {
        let gpg = Gpg::new();
        let uid = "Oldsub <oldsub@example.com>";
        let faked = ["--faked-system-time", "20200101T000000!"];
        let fpr = gpg.generate(uid, "ed25519", "cert", "0", &faked);
        let mut args = vec!["--batch", "--passphrase", ""];
        args.extend_from_slice(&faked);
        args.extend_from_slice(&["--quick-add-key", &fpr, "ed25519", "sign", "1d"]);
        gpg.run(&args);
        let sub = gpg.subkey_fingerprints(uid).pop().unwrap();
        let message = gpg.sign(
            &fpr,
            PAYLOAD,
            &["--armor", "--faked-system-time", "20200101T120000!"],
        );
        let err = public(&gpg, &fpr).verify_message(&message).unwrap_err();
        assert!(
            matches!(err, PgpError::Expired { ref fingerprint, .. } if *fingerprint == sub),
            "{err:?}"
        );
    }

    #[test]
    fn revoked_key_is_rejected_with_its_reason() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("Rev <rev@example.com>", "ed25519", "sign", "0", &[]);
        let message = gpg.armored_sign(&fpr, PAYLOAD);
        assert_eq!(
            public(&gpg, &fpr).verify_message(&message).unwrap(),
            PAYLOAD
        );
        // gpg --gen-revoke asks: really?, reason (2 = superseded), text lines, empty line, ok?
        let rev = gpg.path("rev.asc");
        gpg.run_with(
            &[
                "--yes",
                "--command-fd",
                "0",
                "--passphrase",
                "",
                "--armor",
                "--output",
                rev.to_str().unwrap(),
                "--gen-revoke",
                &fpr,
            ],
            b"y\n2\nmoved to a new key\n\ny\n",
        );
        gpg.run(&["--batch", "--import", rev.to_str().unwrap()]);
        let err = public(&gpg, &fpr).verify_message(&message).unwrap_err();
        assert_eq!(
            err,
            PgpError::Revoked {
                fingerprint: fpr.clone(),
                reason: "key superseded: moved to a new key".into()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("OpenPGP key {fpr} is revoked: key superseded: moved to a new key")
        );
    }

    #[test]
    fn revoked_by_gpgs_stored_certificate() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("Rev2 <rev2@example.com>", "rsa3072", "sign", "0", &[]);
        let message = gpg.armored_sign(&fpr, PAYLOAD);
        let stored =
            std::fs::read_to_string(gpg.path("openpgp-revocs.d").join(format!("{fpr}.rev")))
                .unwrap();
        let cert = stored.replace(":-----BEGIN", "-----BEGIN");
        gpg.run_with(&["--batch", "--import"], cert.as_bytes());
        let err = public(&gpg, &fpr).verify_message(&message).unwrap_err();
        assert!(
            matches!(err, PgpError::Revoked { ref fingerprint, .. } if *fingerprint == fpr),
            "{err:?}"
        );
    }

    #[test]
    fn sign_message_is_accepted_by_gpg_and_by_verify_message() {
        let gpg = Gpg::new();
        for (uid, algo) in [
            ("RS <rs@example.com>", "rsa3072"),
            ("ES <es@example.com>", "ed25519"),
        ] {
            let fpr = gpg.generate(uid, algo, "sign", "0", &[]);
            let secret = PgpSecretKey::from_armor(&gpg.export_secret(&fpr, ""), "").unwrap();
            assert_eq!(secret.fingerprint(), fpr);
            assert_eq!(secret.public_key().fingerprint(), fpr);
            let message = secret.sign_message(PAYLOAD).unwrap();
            assert!(message.starts_with("-----BEGIN PGP MESSAGE-----"));
            assert_eq!(
                public(&gpg, &fpr)
                    .verify_message(message.as_bytes())
                    .unwrap(),
                PAYLOAD
            );
            let path = gpg.path("made.asc");
            std::fs::write(&path, &message).unwrap();
            gpg.run(&["--batch", "--verify", path.to_str().unwrap()]);
            let out = gpg.run(&["--batch", "--decrypt", path.to_str().unwrap()]);
            assert_eq!(out.stdout, PAYLOAD);
            let status = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(status.contains("Good signature"), "{status}");
        }
    }

    #[test]
    fn sign_message_uses_the_signing_subkey_of_a_certify_only_primary() {
        let gpg = Gpg::new();
        let uid = "CS <cs@example.com>";
        let fpr = gpg.generate(uid, "ed25519", "cert", "0", &[]);
        gpg.run(&[
            "--batch",
            "--passphrase",
            "",
            "--quick-add-key",
            &fpr,
            "ed25519",
            "sign",
            "0",
        ]);
        let secret = PgpSecretKey::from_armor(&gpg.export_secret(&fpr, ""), "").unwrap();
        let message = secret.sign_message(PAYLOAD).unwrap();
        assert_eq!(
            secret
                .public_key()
                .verify_message(message.as_bytes())
                .unwrap(),
            PAYLOAD
        );
        let path = gpg.path("made.asc");
        std::fs::write(&path, &message).unwrap();
        let out = gpg.run(&["--batch", "--decrypt", path.to_str().unwrap()]);
        assert_eq!(out.stdout, PAYLOAD);
    }

    #[test]
    fn passphrase_protected_secret_key() {
        let gpg = Gpg::new();
        let fpr = gpg.gen_with_passphrase(
            "P <p@example.com>",
            "ed25519",
            "sign",
            "0",
            &[],
            "correct horse",
        );
        let armored = gpg.export_secret(&fpr, "correct horse");
        let err = PgpSecretKey::from_armor(&armored, "wrong horse").unwrap_err();
        assert_eq!(
            err,
            PgpError::WrongPassphrase {
                fingerprint: fpr.clone()
            }
        );
        assert!(!err.to_string().contains("horse"));
        assert!(matches!(
            PgpSecretKey::from_armor(&armored, "").unwrap_err(),
            PgpError::WrongPassphrase { .. }
        ));
        let secret = PgpSecretKey::from_armor(&armored, "correct horse").unwrap();
        let debug = format!("{secret:?}");
        assert_eq!(
            debug,
            format!("PgpSecretKey {{ fingerprint: \"{fpr}\", secret: \"<redacted>\" }}")
        );
        let message = secret.sign_message(PAYLOAD).unwrap();
        assert_eq!(
            public(&gpg, &fpr)
                .verify_message(message.as_bytes())
                .unwrap(),
            PAYLOAD
        );
    }

    #[test]
    fn inputs_over_the_limit_are_refused_before_parsing() {
        let big = vec![b'A'; MAX_PGP_BYTES + 1];
        let text = String::from_utf8(big.clone()).unwrap();
        assert!(matches!(
            PgpPublicKey::from_armor(&text).unwrap_err(),
            PgpError::TooLarge { .. }
        ));
        assert!(matches!(
            PgpSecretKey::from_armor(&text, "").unwrap_err(),
            PgpError::TooLarge { .. }
        ));
        let gpg = Gpg::new();
        let fpr = gpg.generate("L <l@example.com>", "ed25519", "sign", "0", &[]);
        let key = public(&gpg, &fpr);
        assert!(matches!(
            key.verify_message(&big).unwrap_err(),
            PgpError::TooLarge { .. }
        ));
        // A payload that compresses well but decompresses to over the limit.
        let huge = vec![b'x'; MAX_PGP_BYTES + 10];
        let message = gpg.armored_sign(&fpr, &huge);
        assert!(message.len() < MAX_PGP_BYTES);
        assert!(matches!(
            key.verify_message(&message).unwrap_err(),
            PgpError::TooLarge {
                what: "signed payload",
                ..
            }
        ));
    }

    #[test]
    fn public_key_debug_shows_the_fingerprint_only() {
        let gpg = Gpg::new();
        let fpr = gpg.generate("Dbg <dbg@example.com>", "ed25519", "sign", "0", &[]);
        assert_eq!(
            format!("{:?}", public(&gpg, &fpr)),
            format!("PgpPublicKey {{ fingerprint: \"{fpr}\" }}")
        );
    }
}
