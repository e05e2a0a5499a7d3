//! A bundle signed with a certificate (keyless, or from the user's own CA), verified whole and
//! offline: the transparency-log entries and RFC 3161 timestamps give the trusted signing
//! times, the certificate must chain to a trusted CA and be valid at every one of them (with an
//! SCT for Fulcio), the certificate's identity must be one the caller allows, and the signature
//! must verify with the certificate's key over the stored bytes, bound to the digest asked for.
//!
//! Fails closed on each step: a log entry or a timestamp that does not verify rejects the
//! bundle (they are not covered by the signature, but a bundle carrying a bad one is not what
//! its signer's tools produced), and a Fulcio certificate with no trusted time is refused.

use std::time::SystemTime;

use crate::bundle::{Bundle, BundleError};
use crate::digest::{Algorithm, Digest};
use crate::dsse::Envelope;
use crate::intoto::{self, Statement};
use crate::keys::PublicKey;
use crate::signed_time::SignedTime;
use crate::timestamp::{TimestampAuthority, verify_timestamp};
use crate::tlog::{EntryExpectation, ExpectedSigner, LogEntry, TransparencyLog, verify_entry};
use crate::verified::Verified;

use super::{
    CertificateTrust, IdentityMatcher, SigningCertificate, TrustedRoot, verify_certificate,
};

/// What a certificate-based attestor trusts: the CAs (with CT logs for Fulcio), the logs and
/// timestamp authorities whose word on the signing time counts, and the identities allowed.
#[derive(Debug, Clone)]
pub struct KeylessTrust {
    /// The CAs certificates must chain to.
    pub certificates: CertificateTrust,
    /// Transparency logs whose entries count (a Sigstore trusted root's `tlogs`).
    pub tlogs: Vec<TransparencyLog>,
    /// Timestamp authorities whose timestamps count.
    pub timestamp_authorities: Vec<TimestampAuthority>,
    /// Who may have signed: any one matching is enough. Never empty when built by a policy.
    pub identities: Vec<IdentityMatcher>,
}

impl KeylessTrust {
    /// Keyless signing under a Sigstore trusted root: its Fulcio CAs (SCT required), its logs
    /// and its timestamp authorities.
    pub fn keyless(root: &TrustedRoot, identities: Vec<IdentityMatcher>) -> KeylessTrust {
        KeylessTrust {
            certificates: CertificateTrust::fulcio(root),
            tlogs: root.tlogs().to_vec(),
            timestamp_authorities: root.timestamp_authorities().to_vec(),
            identities,
        }
    }

    /// Certificates from the user's own CA: no log or timestamp authority unless added; with
    /// no trusted time, the certificate is checked at the time of verification (as cosign does
    /// for `--certificate` signatures without a log).
    pub fn own_pki(certificates: CertificateTrust, identities: Vec<IdentityMatcher>) -> Self {
        KeylessTrust {
            certificates,
            tlogs: Vec::new(),
            timestamp_authorities: Vec::new(),
            identities,
        }
    }

    /// Whether a trusted time (log or timestamp) is required: for Fulcio's short-lived
    /// certificates, always.
    fn requires_trusted_time(&self) -> bool {
        self.certificates.requires_sct()
    }
}

/// Why a certificate-signed bundle was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum KeylessError {
    /// The bundle is signed with a key, not a certificate.
    #[error("the bundle is signed with a key, not a certificate")]
    NotCertificate,
    /// The bundle is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The signature does not verify with the certificate's key, or binds another digest.
    #[error("{0}")]
    Signature(String),
    /// A transparency-log entry did not verify.
    #[error("transparency-log entry {index}: {reason}")]
    LogEntry {
        /// Its position in the bundle.
        index: usize,
        /// Why.
        reason: String,
    },
    /// An RFC 3161 timestamp did not verify.
    #[error("RFC 3161 timestamp {index}: {reason}")]
    Timestamp {
        /// Its position in the bundle.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The RFC 3161 timestamp of a legacy layer (its
    /// `dev.sigstore.cosign/rfc3161timestamp` annotation) did not verify.
    #[error(
        "RFC 3161 timestamp in the {} annotation: {reason}",
        crate::timestamp::COSIGN_RFC3161_ANNOTATION
    )]
    LegacyTimestamp {
        /// Why.
        reason: String,
    },
    /// A Fulcio certificate without a trusted signing time.
    #[error(
        "no trusted signing time: the bundle has no transparency-log entry with a signed \
         entry timestamp and no RFC 3161 timestamp from a trusted authority, so the short-lived \
         certificate cannot be checked"
    )]
    NoTrustedTime,
    /// The certificate was refused.
    #[error("signing certificate: {0}")]
    Certificate(String),
    /// The certificate is valid but names nobody allowed.
    #[error("{0}")]
    Identity(String),
}

/// A certificate-signed bundle that verified: the certificate (with its identity), the trusted
/// times and the log entries that vouched. Only this module makes one.
#[derive(Debug, Clone)]
pub struct CertifiedSignature {
    certificate: SigningCertificate,
    times: Vec<SignedTime>,
    log_entries: Vec<(String, u64)>,
}

impl CertifiedSignature {
    /// The signing certificate, its identity and CA.
    pub fn certificate(&self) -> &SigningCertificate {
        &self.certificate
    }

    /// The trusted signing times (log integrated times, timestamps); empty only for own-PKI
    /// certificates checked at the time of verification.
    pub fn times(&self) -> &[SignedTime] {
        &self.times
    }

    /// The log entries that vouched for the signature: log name and index.
    pub fn log_entries(&self) -> &[(String, u64)] {
        &self.log_entries
    }
}

/// What a blob bundle proved about the file.
#[derive(Debug, Clone)]
pub enum BlobSigned {
    /// A DSSE in-toto statement naming the file (by sha256 or sha512) as a subject.
    Statement(Verified<Statement>),
    /// A message signature over the file's bytes.
    Message,
}

/// Verifies a bundle's DSSE in-toto statement about `subject`, signed with a certificate
/// `trust` accepts for one of its identities. `now` is used only for own-PKI certificates
/// without any trusted time.
pub fn verify_statement(
    bundle: &Bundle,
    trust: &KeylessTrust,
    subject: &Digest,
    now: SystemTime,
) -> Result<(Verified<Statement>, CertifiedSignature), KeylessError> {
    let (leaf, chain) = bundle
        .signing_certificate()?
        .ok_or(KeylessError::NotCertificate)?;
    let key = leaf_key(&leaf)?;
    let verified = bundle
        .verify_statement(std::slice::from_ref(&key), subject)
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    let envelope = bundle.envelope()?;
    let expectation = EntryExpectation::dsse(envelope, ExpectedSigner::certificate(leaf.clone()))
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    let proof = check_material(bundle, trust, &leaf, &chain, &expectation, now)?;
    Ok((verified, proof))
}

/// Verifies a bundle for a local file (`verify-blob`): a DSSE in-toto statement whose subject
/// is the file (its sha256 or sha512, as npm and GitHub provenance name it), or a message
/// signature over the file's bytes.
pub fn verify_blob(
    bundle: &Bundle,
    trust: &KeylessTrust,
    file: &[u8],
    now: SystemTime,
) -> Result<(BlobSigned, CertifiedSignature), KeylessError> {
    let (leaf, chain) = bundle
        .signing_certificate()?
        .ok_or(KeylessError::NotCertificate)?;
    let key = leaf_key(&leaf)?;
    let sha256 = Digest::sha256_of(file);
    if let Some(envelope) = &bundle.dsse_envelope {
        let verified = statement_about_file(envelope, &key, file, &sha256)?;
        let expectation =
            EntryExpectation::dsse(envelope, ExpectedSigner::certificate(leaf.clone()))
                .map_err(|e| KeylessError::Signature(e.to_string()))?;
        let proof = check_material(bundle, trust, &leaf, &chain, &expectation, now)?;
        return Ok((BlobSigned::Statement(verified), proof));
    }
    let message = bundle
        .message_signature()?
        .ok_or_else(|| KeylessError::Signature("the bundle holds no signed content".into()))?;
    if let Some(stated) = &message.message_digest {
        let ours = match stated.algorithm.as_str() {
            "SHA2_256" => sha256.clone(),
            "SHA2_512" => Digest::of(Algorithm::Sha512, file),
            other => {
                return Err(KeylessError::Signature(format!(
                    "message digest algorithm {other} is not supported"
                )));
            }
        };
        if hex::encode(&stated.digest) != ours.hex() {
            return Err(KeylessError::Signature(format!(
                "the bundle's message digest is not the file's ({ours})"
            )));
        }
    }
    key.verify(file, &message.signature).map_err(|e| {
        KeylessError::Signature(format!(
            "the message signature does not verify with the certificate's key over the file: {e}"
        ))
    })?;
    let expectation = EntryExpectation::message_signature(
        sha256,
        message.signature.clone(),
        ExpectedSigner::certificate(leaf.clone()),
    );
    let proof = check_material(bundle, trust, &leaf, &chain, &expectation, now)?;
    Ok((BlobSigned::Message, proof))
}

/// The envelope verified with `key`, holding an in-toto statement with the file as a subject.
fn statement_about_file(
    envelope: &Envelope,
    key: &PublicKey,
    file: &[u8],
    sha256: &Digest,
) -> Result<Verified<Statement>, KeylessError> {
    let payload = envelope
        .verify(std::slice::from_ref(key))
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    if payload.value().payload_type != intoto::PAYLOAD_TYPE {
        return Err(KeylessError::Signature(format!(
            "DSSE payload type is \"{}\", expected {}",
            payload.value().payload_type,
            intoto::PAYLOAD_TYPE
        )));
    }
    let statement = Statement::parse(&payload.value().bytes)
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    let sha512 = Digest::of(Algorithm::Sha512, file);
    if statement.check_subject(sha256).is_err() && statement.check_subject(&sha512).is_err() {
        return Err(KeylessError::Signature(format!(
            "the statement is about another artifact: no subject has the file's digest \
             ({sha256} or {sha512})"
        )));
    }
    Ok(payload.map(|_| statement))
}

fn leaf_key(leaf: &[u8]) -> Result<PublicKey, KeylessError> {
    crate::certified::certified_key(leaf)
        .map_err(|e| KeylessError::Certificate(format!("unreadable: {e}")))
}

/// The trusted times (log entries, timestamps), then the certificate at those times, then the
/// identity.
fn check_material(
    bundle: &Bundle,
    trust: &KeylessTrust,
    leaf: &[u8],
    chain: &[Vec<u8>],
    expectation: &EntryExpectation,
    now: SystemTime,
) -> Result<CertifiedSignature, KeylessError> {
    let mut times = Vec::new();
    let mut log_entries = Vec::new();
    let mut untimed_windows = Vec::new();
    // Own PKI without logs: entries cannot be checked and are not needed.
    if !trust.tlogs.is_empty() {
        for (index, json) in bundle.verification_material.tlog_entries.iter().enumerate() {
            let entry = LogEntry::from_bundle_json(json).map_err(|e| KeylessError::LogEntry {
                index,
                reason: e.to_string(),
            })?;
            let verified = verify_entry(&entry, &trust.tlogs, expectation).map_err(|e| {
                KeylessError::LogEntry {
                    index,
                    reason: e.to_string(),
                }
            })?;
            log_entries.push((verified.log_name().to_string(), verified.log_index()));
            match verified.signed_time() {
                Some(time) => times.push(time),
                // Rekor v2: the entry proves inclusion but not when; a timestamp must, inside
                // the log's window.
                None => untimed_windows.push((
                    index,
                    verified.log_name().to_string(),
                    verified.log_valid_for(),
                )),
            }
        }
    }
    let mut stamped = Vec::new();
    if !trust.timestamp_authorities.is_empty() {
        let tokens = bundle.rfc3161_timestamps()?;
        if !tokens.is_empty() {
            let signature = bundle.timestamped_signature()?;
            for (index, token) in tokens.iter().enumerate() {
                let verified = verify_timestamp(token, &signature, &trust.timestamp_authorities)
                    .map_err(|e| KeylessError::Timestamp {
                        index,
                        reason: e.to_string(),
                    })?;
                stamped.push(verified.signed_time());
            }
        }
    }
    for (index, log, window) in &untimed_windows {
        if stamped.is_empty() {
            return Err(KeylessError::LogEntry {
                index: *index,
                reason: format!(
                    "the entry in log {log} carries no time and no trusted timestamp gives one"
                ),
            });
        }
        if let Some(outside) = stamped.iter().find(|t| !window.contains(t.at)) {
            return Err(KeylessError::LogEntry {
                index: *index,
                reason: format!(
                    "log {log} was not valid at the timestamp's time {}",
                    humantime::format_rfc3339_seconds(outside.at)
                ),
            });
        }
    }
    times.extend(stamped);
    certify(trust, leaf, chain, times, log_entries, now)
}

/// The certificate at the trusted `times` (or `now` for own-PKI certificates without any),
/// then the identity.
fn certify(
    trust: &KeylessTrust,
    leaf: &[u8],
    chain: &[Vec<u8>],
    times: Vec<SignedTime>,
    log_entries: Vec<(String, u64)>,
    now: SystemTime,
) -> Result<CertifiedSignature, KeylessError> {
    if times.is_empty() && trust.requires_trusted_time() {
        return Err(KeylessError::NoTrustedTime);
    }
    let at: Vec<SystemTime> = if times.is_empty() {
        vec![now]
    } else {
        times.iter().map(|t| t.at).collect()
    };
    let certificate = verify_certificate(leaf, chain, &trust.certificates, &at)
        .map_err(|e| KeylessError::Certificate(e.to_string()))?;
    let mut why_not = Vec::new();
    let matched = trust
        .identities
        .iter()
        .any(|m| match certificate.check_identity(m) {
            Ok(()) => true,
            Err(reason) => {
                why_not.push(reason);
                false
            }
        });
    if !matched {
        let identity = certificate.identity();
        let issuer = identity
            .issuer
            .as_deref()
            .map(|i| format!(" (issuer {i})"))
            .unwrap_or_default();
        return Err(KeylessError::Identity(if trust.identities.is_empty() {
            format!(
                "certificate for {}{issuer}: no identity is allowed",
                identity.subject
            )
        } else {
            format!(
                "certificate for {}{issuer} matches no allowed identity: {}",
                identity.subject,
                why_not.join("; ")
            )
        }));
    }
    Ok(CertifiedSignature {
        certificate,
        times,
        log_entries,
    })
}

/// The certificate material cosign puts on a legacy `.sig` or `.att` layer signed keyless or
/// with a certificate: the `dev.sigstore.cosign/certificate` (PEM), `dev.sigstore.cosign/chain`
/// (PEM), `dev.sigstore.cosign/bundle` (Rekor's SET over the entry) and
/// `dev.sigstore.cosign/rfc3161timestamp` (a TSA's token) annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyCertificate {
    /// The signing certificate, PEM.
    pub certificate: String,
    /// The certificates above it, PEM.
    pub chain: Option<String>,
    /// The Rekor bundle annotation (JSON).
    pub rekor_bundle: Option<String>,
    /// The RFC 3161 timestamp annotation (JSON, `{"SignedRFC3161Timestamp": "<base64 DER>"}`).
    pub rfc3161_timestamp: Option<String>,
}

/// A legacy layer's certificates, read.
struct LegacyCertificates {
    /// The leaf, DER.
    leaf: Vec<u8>,
    /// The chain above it, DER.
    chain: Vec<Vec<u8>>,
    /// The leaf's key.
    key: PublicKey,
}

/// The trusted times a legacy layer's annotations gave, and the log entries among them.
struct LegacyTimes {
    times: Vec<SignedTime>,
    log_entries: Vec<(String, u64)>,
}

impl LegacyCertificate {
    /// The leaf, the chain above it and the leaf's key.
    fn parse(&self) -> Result<LegacyCertificates, KeylessError> {
        let certificate = |pem: &str, what: &str| {
            crate::certified::certificates_from_pem(pem.as_bytes(), what)
                .map_err(|e| KeylessError::Certificate(e.to_string()))
        };
        let mut leaf = certificate(
            &self.certificate,
            crate::certified::COSIGN_CERTIFICATE_ANNOTATION,
        )?;
        if leaf.len() != 1 {
            return Err(KeylessError::Certificate(format!(
                "{} holds {} certificates, expected one",
                crate::certified::COSIGN_CERTIFICATE_ANNOTATION,
                leaf.len()
            )));
        }
        let leaf = leaf.remove(0);
        let chain = match &self.chain {
            Some(pem) => certificate(pem, crate::certified::COSIGN_CHAIN_ANNOTATION)?,
            None => Vec::new(),
        };
        let key = leaf_key(&leaf)?;
        Ok(LegacyCertificates { leaf, chain, key })
    }
}

/// Verifies a legacy `.sig` layer signed with a certificate: the simple-signing `payload` and
/// its base64 `signature` (the layer annotation) with the certificate's key, bound to `digest`;
/// the Rekor bundle annotation (when the trust has logs) and the RFC 3161 timestamp annotation
/// (when it has timestamp authorities) as trusted times; then the certificate and identity as
/// for bundles.
pub fn verify_legacy_signature(
    payload: &[u8],
    signature_base64: &str,
    material: &LegacyCertificate,
    trust: &KeylessTrust,
    digest: &Digest,
    now: SystemTime,
) -> Result<
    (
        Verified<crate::simplesigning::SimpleSigning>,
        CertifiedSignature,
    ),
    KeylessError,
> {
    use base64::Engine as _;
    let LegacyCertificates { leaf, chain, key } = material.parse()?;
    let verified = crate::simplesigning::verify(
        payload,
        signature_base64,
        std::slice::from_ref(&key),
        digest,
    )
    .map_err(|e| KeylessError::Signature(e.to_string()))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature_base64.trim())
        .map_err(|e| KeylessError::Signature(format!("the signature is not base64: {e}")))?;
    let expectation = EntryExpectation::message_signature(
        Digest::sha256_of(payload),
        signature.clone(),
        ExpectedSigner::certificate(leaf.clone()),
    );
    // cosign stamps a `.sig` layer's raw signature bytes (the base64-decoded
    // `dev.cosignproject.cosign/signature` annotation): `VerifyRFC3161Timestamp` in cosign's
    // pkg/cosign/verify.go, which is what signet follows.
    let LegacyTimes { times, log_entries } =
        legacy_times(material, trust, &expectation, &signature)?;
    let proof = certify(trust, &leaf, &chain, times, log_entries, now)?;
    Ok((verified, proof))
}

/// Verifies a legacy `.att` layer signed with a certificate: the DSSE envelope (the layer's
/// bytes, `envelope_json`) with the certificate's key, holding an in-toto statement about
/// `digest`; the Rekor bundle annotation (an intoto or dsse entry for this envelope and
/// certificate, when the trust has logs) and the RFC 3161 timestamp annotation (when it has
/// timestamp authorities) as trusted times; then the certificate and identity as for bundles.
pub fn verify_legacy_attestation(
    envelope_json: &[u8],
    material: &LegacyCertificate,
    trust: &KeylessTrust,
    digest: &Digest,
    now: SystemTime,
) -> Result<(Verified<Statement>, CertifiedSignature), KeylessError> {
    let LegacyCertificates { leaf, chain, key } = material.parse()?;
    let envelope =
        Envelope::from_json(envelope_json).map_err(|e| KeylessError::Signature(e.to_string()))?;
    let verified = intoto::verify_envelope(&envelope, std::slice::from_ref(&key), digest)
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    let expectation = EntryExpectation::dsse(&envelope, ExpectedSigner::certificate(leaf.clone()))
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    // cosign stamps an `.att` layer's payload, the envelope JSON exactly as stored in the layer:
    // its `.att` layers carry an empty signature annotation, and `VerifyRFC3161Timestamp` in
    // cosign's pkg/cosign/verify.go then takes the layer's payload; signet follows it.
    let LegacyTimes { times, log_entries } =
        legacy_times(material, trust, &expectation, envelope_json)?;
    let proof = certify(trust, &leaf, &chain, times, log_entries, now)?;
    Ok((verified, proof))
}

/// The trusted times a legacy layer's annotations give: the Rekor entry (checked when the trust
/// has logs, against `expectation`) and the RFC 3161 timestamp over `stamped` (checked when the
/// trust has timestamp authorities). As for bundles, each one present and checkable must
/// verify, or the layer is rejected.
fn legacy_times(
    material: &LegacyCertificate,
    trust: &KeylessTrust,
    expectation: &EntryExpectation,
    stamped: &[u8],
) -> Result<LegacyTimes, KeylessError> {
    let mut times = Vec::new();
    let mut log_entries = Vec::new();
    if let (Some(json), false) = (&material.rekor_bundle, trust.tlogs.is_empty()) {
        let reason = |e: crate::tlog::TlogError| KeylessError::LogEntry {
            index: 0,
            reason: e.to_string(),
        };
        let entry = LogEntry::from_cosign_bundle_annotation(json.as_bytes()).map_err(reason)?;
        let verified_entry = verify_entry(&entry, &trust.tlogs, expectation).map_err(reason)?;
        log_entries.push((
            verified_entry.log_name().to_string(),
            verified_entry.log_index(),
        ));
        // A legacy annotation always holds a SET over the integrated time, so the entry has
        // a time (Rekor v2 entries, which have none, are never written as annotations).
        times.extend(verified_entry.signed_time());
    }
    if let (Some(json), false) = (
        &material.rfc3161_timestamp,
        trust.timestamp_authorities.is_empty(),
    ) {
        let reason = |e: crate::timestamp::TimestampError| KeylessError::LegacyTimestamp {
            reason: match e {
                crate::timestamp::TimestampError::CosignAnnotation { reason } => {
                    format!("malformed: {reason}")
                }
                e => e.to_string(),
            },
        };
        let token = crate::timestamp::token_from_cosign_annotation(json).map_err(reason)?;
        let verified =
            verify_timestamp(&token, stamped, &trust.timestamp_authorities).map_err(reason)?;
        times.push(verified.signed_time());
    }
    Ok(LegacyTimes { times, log_entries })
}
