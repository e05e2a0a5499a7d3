//! Checking gathered evidence against keys: the one place where evidence becomes a proof.
//!
//! Every format signet reads goes through [`check`]: a bundle's DSSE envelope and a legacy
//! `.att` layer through `signet_core::intoto::verify_envelope`, a legacy `.sig` layer through
//! `signet_core::simplesigning::verify`. Each returns a `Verified<T>` (the key check and the
//! digest binding done together in signet-core), which is kept inside an [`Accepted`] whose
//! fields are private: nothing outside this crate can build one, so holding one is proof that
//! the check ran and passed. What fails becomes a typed [`Rejected`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use signet_core::Verified;
use signet_core::binauthz::{self, NoteKey, Occurrence};
use signet_core::bundle::{Bundle, BundleError};
use signet_core::digest::Digest;
use signet_core::dsse::Envelope;
use signet_core::evidence::{Format, Location, Rejected, Rejection};
use signet_core::intoto::{self, Statement};
use signet_core::keyless::{self, CertifiedSignature, KeylessTrust};
use signet_core::keys::{KeyId, PublicKey};
use signet_core::signed_time::{self, SignedTime, SignedTimes};
use signet_core::simplesigning::{self, SimpleSigning};
use signet_core::timestamp::{TimestampAuthority, verify_timestamp};

use crate::gather::{Evidence, Payload};

/// A piece of evidence whose signature verified with a trusted key and that binds the image
/// digest. Only [`check`] makes one.
///
/// ```compile_fail
/// // Outside signet-verify there is no way to build a proof: the fields are private and there
/// // is no public constructor.
/// let forged = signet_verify::Accepted {
///     location: todo!(),
///     digest: todo!(),
///     proven: todo!(),
/// };
/// ```
#[derive(Debug, Clone)]
pub struct Accepted {
    location: Location,
    digest: Digest,
    proven: Proven,
    times: SignedTimes,
    certified: Option<Box<CertifiedSignature>>,
}

/// What verified: the signed content, still inside core's proof value.
#[derive(Debug, Clone)]
enum Proven {
    /// A DSSE in-toto statement (bundle or legacy `.att`), with its JSON for conditions.
    Statement {
        verified: Verified<Statement>,
        json: serde_json::Value,
    },
    /// A simple-signing payload (legacy `.sig`, or a Binary Authorization attestation).
    Signature(Verified<SimpleSigning>),
}

impl Accepted {
    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The format it came in.
    pub fn format(&self) -> Format {
        self.location.format()
    }

    /// The image digest the signed content is bound to.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The key whose signature verified.
    pub fn key_id(&self) -> &KeyId {
        match &self.proven {
            Proven::Statement { verified, .. } => verified.key_id(),
            Proven::Signature(verified) => verified.key_id(),
        }
    }

    /// The predicate type (`https://sigstore.dev/cosign/sign/v1` for plain signatures).
    pub fn predicate_type(&self) -> &str {
        match &self.proven {
            Proven::Statement { verified, .. } => &verified.value().predicate_type,
            Proven::Signature(_) => intoto::COSIGN_SIGN_PREDICATE,
        }
    }

    /// The verified in-toto statement, for attestations.
    pub fn statement(&self) -> Option<&Statement> {
        match &self.proven {
            Proven::Statement { verified, .. } => Some(verified.value()),
            Proven::Signature(_) => None,
        }
    }

    /// The verified simple-signing payload, for legacy signatures.
    pub fn simple_signing(&self) -> Option<&SimpleSigning> {
        match &self.proven {
            Proven::Signature(verified) => Some(verified.value()),
            Proven::Statement { .. } => None,
        }
    }

    /// When it was signed, as its signed content (and any verified timestamp) says.
    pub fn signed_times(&self) -> &SignedTimes {
        &self.times
    }

    /// For evidence signed with a certificate: the certificate (identity, CA), the trusted
    /// times and the log entries that vouched.
    pub fn certified(&self) -> Option<&CertifiedSignature> {
        self.certified.as_deref()
    }

    /// Simple-signing annotations (`optional`) of a legacy signature; empty otherwise.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.simple_signing()
            .map(|s| s.optional.clone())
            .unwrap_or_default()
    }

    fn statement_proof(
        location: Location,
        digest: &Digest,
        verified: Verified<Statement>,
    ) -> Result<Accepted, Rejection> {
        // Conditions run over the statement as JSON. Turning it into JSON cannot fail for the
        // shapes a statement parses into; if it ever did, that is a rejection, never "no
        // statement" (which would let a signature stand in for an attestation).
        let json = serde_json::to_value(verified.value()).map_err(|e| {
            Rejection::malformed(format!("statement cannot be given to conditions: {e}"))
        })?;
        let times = signed_time::statement_times(verified.value(), digest);
        Ok(Accepted {
            location,
            digest: digest.clone(),
            proven: Proven::Statement { verified, json },
            times,
            certified: None,
        })
    }
}

impl signet_policy::evaluate::Proof for Accepted {
    fn location(&self) -> &Location {
        &self.location
    }

    fn key_id(&self) -> &KeyId {
        Accepted::key_id(self)
    }

    fn predicate_type(&self) -> &str {
        Accepted::predicate_type(self)
    }

    fn statement(&self) -> Option<&serde_json::Value> {
        match &self.proven {
            Proven::Statement { json, .. } => Some(json),
            Proven::Signature(_) => None,
        }
    }

    fn signed_reference(&self) -> Option<&str> {
        self.simple_signing().map(|s| s.docker_reference.as_str())
    }

    fn signed_times(&self) -> &SignedTimes {
        Accepted::signed_times(self)
    }

    fn certified(&self) -> Option<&CertifiedSignature> {
        Accepted::certified(self)
    }
}

/// The outcome of checking evidence against a set of keys.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Evidence that verified.
    pub accepted: Vec<Accepted>,
    /// Evidence that did not, with reasons.
    pub rejected: Vec<Rejected>,
}

/// Checks every piece of `evidence` against `keys` for `digest`. Pure: no I/O. Binary
/// Authorization attestations count when a PKIX signature verifies with one of `keys`, whatever
/// `publicKeyId` it names (the keys were given, not an attestor's list).
pub fn check(evidence: &[Evidence], keys: &[PublicKey], digest: &Digest) -> Checked {
    check_with(evidence, keys, &any_id_note_keys(keys), digest, &[], &[])
}

/// `keys` as Binary Authorization keys that verify an attestation whatever `publicKeyId` it
/// names.
pub fn any_id_note_keys(keys: &[PublicKey]) -> Vec<NoteKey> {
    keys.iter()
        .map(|key| NoteKey::Pkix {
            id: None,
            key: key.clone(),
            scheme: None,
        })
        .collect()
}

/// Checks every piece of `evidence` against an attestor's keys: `keys` for cosign-format
/// evidence, `note_keys` (matched by `publicKeyId`) for Binary Authorization attestations.
/// RFC 3161 timestamps in bundles that verify against one of `authorities` become trusted
/// signing times; one that does not verify is no time at all (timestamps are not covered by
/// the signature, so anyone could add or strip them).
/// Bundles signed with a certificate count when one of `keyless` accepts them (its CAs, logs,
/// timestamp authorities and identities; `signet_core::keyless`), and so do legacy `.sig` and
/// `.att` layers carrying cosign's certificate annotations; without any `keyless`, those layers
/// verify with `keys`.
pub fn check_with(
    evidence: &[Evidence],
    keys: &[PublicKey],
    note_keys: &[NoteKey],
    digest: &Digest,
    authorities: &[TimestampAuthority],
    keyless: &[KeylessTrust],
) -> Checked {
    let mut out = Checked::default();
    let mut withdrawals = Vec::new();
    let trust = Trust {
        keys,
        note_keys,
        authorities,
        keyless,
    };
    for e in evidence {
        match check_one(e, &trust, digest) {
            // A withdrawal is never evidence itself; it takes back what it names.
            Ok(accepted) if accepted.predicate_type() == intoto::WITHDRAWAL_PREDICATE => {
                withdrawals.push(accepted);
            }
            Ok(accepted) => out.accepted.push(accepted),
            Err(reason) => out.rejected.push(Rejected {
                location: e.location.clone(),
                reason,
            }),
        }
    }
    for withdrawal in &withdrawals {
        let Some(predicate) = withdrawal.statement().map(|s| &s.predicate) else {
            continue;
        };
        let named = predicate
            .get("withdrawn")
            .and_then(serde_json::Value::as_str)
            .and_then(|d| d.parse::<Digest>().ok());
        let Some(named) = named else {
            out.rejected.push(Rejected {
                location: withdrawal.location().clone(),
                reason: Rejection::malformed(
                    "withdrawal statement without a valid `withdrawn` digest",
                ),
            });
            continue;
        };
        let why = predicate
            .get("reason")
            .and_then(serde_json::Value::as_str)
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let (withdrawn, kept): (Vec<Accepted>, Vec<Accepted>) = std::mem::take(&mut out.accepted)
            .into_iter()
            .partition(|a| referrer_digest(a.location()) == Some(&named));
        out.accepted = kept;
        for a in withdrawn {
            out.rejected.push(Rejected {
                location: a.location().clone(),
                reason: Rejection::Withdrawn {
                    reason: format!(
                        "withdrawn by key {} in {}{why}",
                        withdrawal.key_id(),
                        withdrawal.location()
                    ),
                },
            });
        }
    }
    out
}

/// The referrer manifest digest of a location, when it is a referrer.
fn referrer_digest(location: &Location) -> Option<&Digest> {
    match location {
        Location::Referrer(d) | Location::Occurrence(d) => Some(d),
        _ => None,
    }
}

/// Everything one attestor trusts.
struct Trust<'t> {
    keys: &'t [PublicKey],
    note_keys: &'t [NoteKey],
    authorities: &'t [TimestampAuthority],
    keyless: &'t [KeylessTrust],
}

fn check_one(e: &Evidence, trust: &Trust<'_>, digest: &Digest) -> Result<Accepted, Rejection> {
    let Trust {
        keys,
        note_keys,
        authorities,
        keyless,
    } = *trust;
    let location = e.location.clone();
    match &e.payload {
        Payload::Unreadable(reason) => Err(reason.clone()),
        Payload::Bundle(bytes) => {
            let bundle = Bundle::parse(bytes)?;
            if bundle.verification_material.certificate.is_some()
                || bundle
                    .verification_material
                    .x509_certificate_chain
                    .is_some()
            {
                return check_certified(location, &bundle, keyless, digest);
            }
            let verified = bundle
                .verify_statement(keys, digest)
                .map_err(|err| name_hinted_key(Rejection::from(err), &bundle, keys))?;
            let mut accepted = Accepted::statement_proof(location, digest, verified)?;
            accepted
                .times
                .times
                .extend(trusted_times(&bundle, authorities));
            Ok(accepted)
        }
        Payload::Dsse {
            envelope,
            certificate: Some(material),
        } if !keyless.is_empty() => {
            check_legacy_attestation_certified(location, envelope, material, keyless, digest)
        }
        // As for `.sig` layers: without certificate trust, the attestor's keys.
        Payload::Dsse { envelope, .. } => {
            let envelope = Envelope::from_json(envelope)?;
            let verified = intoto::verify_envelope(&envelope, keys, digest)?;
            Accepted::statement_proof(location, digest, verified)
        }
        Payload::BinAuthz(bytes) => {
            let occurrence = Occurrence::from_json(bytes)
                .map_err(|err| Rejection::malformed(format!("binauthz occurrence: {err}")))?;
            let verified = binauthz::verify(&occurrence, note_keys, digest)?;
            // gcloud's payload carries no time, and the occurrence's `createTime` is not
            // signed.
            Ok(Accepted {
                location,
                digest: digest.clone(),
                proven: Proven::Signature(verified),
                times: SignedTimes::default(),
                certified: None,
            })
        }
        Payload::SimpleSigning {
            payload,
            signature,
            certificate: Some(material),
        } if !keyless.is_empty() => {
            check_legacy_certified(location, payload, signature, material, keyless, digest)
        }
        // Without certificate trust, a legacy layer verifies with the attestor's keys as it
        // always did (cosign --key ignores the certificate annotations too).
        Payload::SimpleSigning {
            payload, signature, ..
        } => {
            let verified = simplesigning::verify(payload, signature, keys, digest)?;
            let times = signed_time::simple_signing_times(verified.value());
            Ok(Accepted {
                location,
                digest: digest.clone(),
                proven: Proven::Signature(verified),
                times,
                certified: None,
            })
        }
    }
}

/// A bundle signed with a certificate, against each certificate trust of the attestor in
/// turn: the first that accepts it makes the proof; none, and the reasons are given.
fn check_certified(
    location: Location,
    bundle: &Bundle,
    keyless: &[KeylessTrust],
    digest: &Digest,
) -> Result<Accepted, Rejection> {
    if keyless.is_empty() {
        return Err(BundleError::CertificateBased.into());
    }
    let (verified, certified) = first_trust_accepting(keyless, |trust| {
        keyless::verify_statement(bundle, trust, digest, SystemTime::now())
    })?;
    let accepted = Accepted::statement_proof(location, digest, verified)?;
    Ok(with_certificate(accepted, certified))
}

/// The proof of the first of the attestor's certificate trusts under which `verify` accepts
/// the evidence; when none does, why (with one trust its own typed reason, with several each
/// said).
fn first_trust_accepting<T>(
    keyless: &[KeylessTrust],
    verify: impl Fn(&KeylessTrust) -> Result<(T, CertifiedSignature), keyless::KeylessError>,
) -> Result<(T, CertifiedSignature), Rejection> {
    let mut reasons = Vec::new();
    for trust in keyless {
        match verify(trust) {
            Ok(proof) => return Ok(proof),
            Err(e) => reasons.push(Rejection::from(e)),
        }
    }
    if reasons.len() == 1 {
        return Err(reasons.remove(0));
    }
    Err(Rejection::Certificate {
        reason: reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// `accepted`, made by `certified`'s certificate: its trusted times count too.
fn with_certificate(mut accepted: Accepted, certified: CertifiedSignature) -> Accepted {
    accepted
        .times
        .times
        .extend(certified.times().iter().cloned());
    accepted.certified = Some(Box::new(certified));
    accepted
}

/// A legacy `.sig` layer signed with a certificate, against each certificate trust of the
/// attestor in turn.
fn check_legacy_certified(
    location: Location,
    payload: &[u8],
    signature: &str,
    material: &keyless::LegacyCertificate,
    keyless: &[KeylessTrust],
    digest: &Digest,
) -> Result<Accepted, Rejection> {
    let (verified, certified) = first_trust_accepting(keyless, |trust| {
        keyless::verify_legacy_signature(
            payload,
            signature,
            material,
            trust,
            digest,
            SystemTime::now(),
        )
    })?;
    let times = signed_time::simple_signing_times(verified.value());
    let accepted = Accepted {
        location,
        digest: digest.clone(),
        proven: Proven::Signature(verified),
        times,
        certified: None,
    };
    Ok(with_certificate(accepted, certified))
}

/// A legacy `.att` layer signed with a certificate, against each certificate trust of the
/// attestor in turn.
fn check_legacy_attestation_certified(
    location: Location,
    envelope: &[u8],
    material: &keyless::LegacyCertificate,
    keyless: &[KeylessTrust],
    digest: &Digest,
) -> Result<Accepted, Rejection> {
    let (verified, certified) = first_trust_accepting(keyless, |trust| {
        keyless::verify_legacy_attestation(envelope, material, trust, digest, SystemTime::now())
    })?;
    let accepted = Accepted::statement_proof(location, digest, verified)?;
    Ok(with_certificate(accepted, certified))
}

/// The signing times the bundle's RFC 3161 timestamps prove, each verified against
/// `authorities` over the bundle's signature.
fn trusted_times(bundle: &Bundle, authorities: &[TimestampAuthority]) -> Vec<SignedTime> {
    if authorities.is_empty() {
        return Vec::new();
    }
    let (Ok(tokens), Ok(signature)) = (bundle.rfc3161_timestamps(), bundle.timestamped_signature())
    else {
        return Vec::new();
    };
    tokens
        .iter()
        .filter_map(|token| verify_timestamp(token, &signature, authorities).ok())
        .map(|verified| verified.signed_time())
        .collect()
}

/// A bundle that verifies with none of the keys: name the key it says it was signed with, so
/// a person can see whose signature this is, and tell a bad signature by one of our keys from a
/// signature by someone else's. The hint is unauthenticated: it only shapes the message and the
/// cause, never the verdict.
fn name_hinted_key(rejection: Rejection, bundle: &Bundle, keys: &[PublicKey]) -> Rejection {
    let Rejection::UnknownKey { reason, .. } = rejection else {
        return rejection;
    };
    let hint = bundle
        .verification_material
        .public_key
        .as_ref()
        .and_then(|k| KeyId::from_hint(&k.hint));
    let Some(named) = hint else {
        return Rejection::UnknownKey {
            reason,
            named: None,
        };
    };
    let ours = keys.iter().any(|k| *k.id() == named);
    let named = named.to_string();
    if ours {
        Rejection::BadSignature {
            reason,
            named: Some(named),
        }
    } else {
        Rejection::UnknownKey {
            reason,
            named: Some(named),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use signet_core::keyless::{LegacyCertificate, TrustedRoot};
    use signet_core::keys::KeyPair;

    use super::*;

    fn digest() -> Digest {
        format!("sha256:{}", "12".repeat(32)).parse().unwrap()
    }

    /// A legacy `.att` layer signed with `key`, carrying certificate annotations (a certificate
    /// that is not the signer's: a key-signed layer copied from elsewhere, say).
    fn att_with_certificate(key: &KeyPair) -> Evidence {
        let statement = Statement::new("registry.test/app", &digest(), "https://x.test/p", {
            serde_json::json!({})
        });
        let envelope = Envelope::sign(intoto::PAYLOAD_TYPE, &statement.to_json(), key).unwrap();
        Evidence {
            location: Location::LegacyLayer {
                format: Format::LegacyAttestation,
                tag: "sha256-12.att".into(),
                index: 0,
            },
            claimed_predicate_type: None,
            payload: Payload::Dsse {
                envelope: Arc::from(envelope.to_json()),
                certificate: Some(Box::new(LegacyCertificate {
                    certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
                        .into(),
                    rfc3161_timestamp: Some("not json".into()),
                    ..LegacyCertificate::default()
                })),
            },
        }
    }

    #[test]
    fn legacy_att_with_certificate_annotations_verifies_by_key_without_certificate_trust() {
        let key = KeyPair::generate_p256().unwrap();
        let evidence = [att_with_certificate(&key)];
        let checked = check(&evidence, std::slice::from_ref(key.public_key()), &digest());
        assert_eq!(checked.rejected.len(), 0, "{:?}", checked.rejected);
        assert_eq!(checked.accepted.len(), 1);
        assert!(checked.accepted[0].certified().is_none());
    }

    #[test]
    fn legacy_att_with_certificate_annotations_goes_to_certificate_trust_when_given() {
        let key = KeyPair::generate_p256().unwrap();
        let evidence = [att_with_certificate(&key)];
        let trust = KeylessTrust::keyless(&TrustedRoot::public_good().unwrap(), Vec::new());
        let checked = check_with(
            &evidence,
            std::slice::from_ref(key.public_key()),
            &[],
            &digest(),
            &[],
            &[trust],
        );
        assert_eq!(checked.accepted.len(), 0);
        let reason = checked.rejected[0].reason.to_string();
        assert!(reason.contains("signing certificate"), "{reason}");
    }
}
