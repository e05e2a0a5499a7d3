//! Embedded signed certificate timestamps (RFC 6962 section 3.3): a CT log's promise, signed
//! over the precertificate, that it logged the certificate. Fulcio embeds one in every
//! certificate; a keyless verification requires one from a CT log of the trusted root.

use std::time::{Duration, SystemTime};

use der::asn1::AnyRef;
use der::oid::AssociatedOid as _;
use der::{Decode as _, Encode as _, Sequence};
use sha2::Digest as _;
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::sct::{
    HashAlgorithm, SignatureAlgorithm, SignedCertificateTimestamp, SignedCertificateTimestampList,
};

use super::CertificateError;
use crate::keys::PkixSignature;
use crate::timestamp::HashAlgorithm as Hash;
use crate::tlog::TransparencyLog;

/// The most SCTs looked at in one certificate (Fulcio embeds one; web PKI certificates 2–5).
const MAX_SCTS: usize = 16;

/// An SCT that verified: which log, and when it says it saw the precertificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtTimestamp {
    log: String,
    time: SystemTime,
}

impl CtTimestamp {
    /// The CT log, as the trusted root names it (its base URL).
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The time the log gave (the certificate's issuance, give or take).
    pub fn time(&self) -> SystemTime {
        self.time
    }
}

/// A TBSCertificate taken apart just enough to drop one extension and put it back together:
/// every field but the extensions is kept as its exact encoding.
#[derive(Sequence)]
struct TbsParts<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<AnyRef<'a>>,
    serial_number: AnyRef<'a>,
    signature: AnyRef<'a>,
    issuer: AnyRef<'a>,
    validity: AnyRef<'a>,
    subject: AnyRef<'a>,
    subject_public_key_info: AnyRef<'a>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    issuer_unique_id: Option<der::asn1::BitStringRef<'a>>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    subject_unique_id: Option<der::asn1::BitStringRef<'a>>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// A certificate whose TBS is [`TbsParts`].
#[derive(Sequence)]
struct CertificateParts<'a> {
    tbs_certificate: TbsParts<'a>,
    signature_algorithm: AnyRef<'a>,
    signature: AnyRef<'a>,
}

/// The precertificate TBS the CT log signed (RFC 6962 section 3.2): the certificate's
/// TBSCertificate without the SCT list extension, DER.
pub(crate) fn precertificate_tbs(leaf_der: &[u8]) -> Result<Vec<u8>, String> {
    let mut parts = CertificateParts::from_der(leaf_der).map_err(|e| e.to_string())?;
    if let Some(extensions) = &mut parts.tbs_certificate.extensions {
        extensions.retain(|ext| ext.extn_id != SignedCertificateTimestampList::OID);
    }
    parts.tbs_certificate.to_der().map_err(|e| e.to_string())
}

/// The bytes a CT log signs for a precertificate entry (RFC 6962 section 3.2,
/// `digitally-signed struct`): version v1, signature type certificate_timestamp, the timestamp,
/// entry type precert_entry, the issuer key hash, the TBS (u24-prefixed) and the SCT's
/// extensions (u16-prefixed).
pub(crate) fn signed_data(
    timestamp: u64,
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
    extensions: &[u8],
) -> Result<Vec<u8>, String> {
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|n| *n < 1 << 24)
        .ok_or("the certificate is too large for an SCT")?;
    let ext_len = u16::try_from(extensions.len()).map_err(|_| "SCT extensions too large")?;
    let mut out = Vec::with_capacity(tbs.len() + extensions.len() + 50);
    out.push(0); // version v1
    out.push(0); // signature_type certificate_timestamp
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    out.extend_from_slice(issuer_key_hash);
    out.extend_from_slice(&tbs_len.to_be_bytes()[1..]);
    out.extend_from_slice(tbs);
    out.extend_from_slice(&ext_len.to_be_bytes());
    out.extend_from_slice(extensions);
    Ok(out)
}

/// Checks that `cert` (`leaf_der`) embeds an SCT from one of `logs`, made while the log was
/// trusted, that verifies over the precertificate issued by the holder of `issuer_spki_der`.
/// SCTs from logs not in `logs` are passed over; one from a known log that does not verify is
/// an error (a forged promise is not ignored in favour of another).
pub(crate) fn verify_embedded_sct(
    leaf_der: &[u8],
    cert: &Certificate,
    issuer_spki_der: &[u8],
    logs: &[TransparencyLog],
) -> Result<CtTimestamp, CertificateError> {
    let malformed = |reason: String| CertificateError::MalformedSct { reason };
    let list = cert
        .tbs_certificate()
        .get_extension::<SignedCertificateTimestampList>()
        .map_err(|e| malformed(format!("the SCT list extension does not parse: {e}")))?;
    let Some((_, list)) = list else {
        return Err(CertificateError::NoTrustedSct { found: 0 });
    };
    let scts = list
        .parse_timestamps()
        .map_err(|e| malformed(format!("the SCT list does not parse: {e:?}")))?;
    if scts.len() > MAX_SCTS {
        return Err(malformed(format!(
            "{} SCTs, more than the {MAX_SCTS} read",
            scts.len()
        )));
    }
    let issuer_key_hash: [u8; 32] = sha2::Sha256::digest(issuer_spki_der).into();
    let tbs = precertificate_tbs(leaf_der)
        .map_err(|e| malformed(format!("cannot rebuild the precertificate: {e}")))?;
    let found = scts.len();
    for serialized in &scts {
        let sct = serialized
            .parse_timestamp()
            .map_err(|e| malformed(format!("an SCT does not parse: {e:?}")))?;
        let Some(log) = logs.iter().find(|l| l.log_id() == sct.log_id.key_id) else {
            continue;
        };
        return verify_one(&sct, log, &issuer_key_hash, &tbs);
    }
    Err(CertificateError::NoTrustedSct { found })
}

fn verify_one(
    sct: &SignedCertificateTimestamp,
    log: &TransparencyLog,
    issuer_key_hash: &[u8; 32],
    tbs: &[u8],
) -> Result<CtTimestamp, CertificateError> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(sct.timestamp);
    if !log.valid_for().contains(time) {
        return Err(CertificateError::SctOutsideLogWindow {
            log: log.name().to_string(),
            time: humantime::format_rfc3339_millis(time).to_string(),
        });
    }
    let invalid = || CertificateError::SctSignature {
        log: log.name().to_string(),
    };
    let kind = match (
        &sct.signature.algorithm.hash,
        &sct.signature.algorithm.signature,
    ) {
        (HashAlgorithm::Sha256, SignatureAlgorithm::Ecdsa) => PkixSignature::Ecdsa,
        (HashAlgorithm::Sha256, SignatureAlgorithm::Rsa) => PkixSignature::RsaPkcs1,
        _ => return Err(invalid()),
    };
    let message = signed_data(
        sct.timestamp,
        issuer_key_hash,
        tbs,
        sct.extensions.as_slice(),
    )
    .map_err(|reason| CertificateError::MalformedSct { reason })?;
    log.key()
        .verify_pkix(
            kind,
            Hash::Sha256,
            &message,
            sct.signature.signature.as_slice(),
        )
        .map_err(|_| invalid())?;
    Ok(CtTimestamp {
        log: log.name().to_string(),
        time,
    })
}
