//! The RFC 3161 structures a timestamp token carries, declared with `der`'s derive macros.
//!
//! RustCrypto publishes these as `x509-tsp`, but its only release (0.1) is built on der 0.7 /
//! cms 0.2 / x509-cert 0.2, the generation before the one signet uses, and would bring a second
//! copy of each; it also decodes `genTime` as RFC 5280's `GeneralizedTime`, which refuses the
//! fractional seconds RFC 3161 allows and real TSAs write. So the declarations live here, in the
//! same shape as x509-tsp's, and `genTime` is taken as a tagged value that [`gen_time`] reads.
//! No decoding is written by hand: `der` does all of it.

use std::time::{Duration, SystemTime};

use cms::content_info::ContentInfo;
use der::asn1::{BitString, GeneralizedTime, Int, OctetString, Utf8StringRef};
use der::oid::ObjectIdentifier;
use der::{Any, AnyRef, Enumerated, Sequence, Tag, Tagged as _};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::name::GeneralName;

/// `TSTInfo`'s version: only v1 exists.
#[derive(Clone, Copy, Debug, Enumerated, Eq, PartialEq)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub(crate) enum TstVersion {
    /// The one version.
    V1 = 1,
}

/// ```text
/// MessageImprint ::= SEQUENCE  {
///    hashAlgorithm                AlgorithmIdentifier,
///    hashedMessage                OCTET STRING  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct MessageImprint {
    pub(crate) hash_algorithm: AlgorithmIdentifierOwned,
    pub(crate) hashed_message: OctetString,
}

/// ```text
/// Accuracy ::= SEQUENCE {
///     seconds        INTEGER              OPTIONAL,
///     millis     [0] INTEGER  (1..999)    OPTIONAL,
///     micros     [1] INTEGER  (1..999)    OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct Accuracy {
    #[asn1(optional = "true")]
    pub(crate) seconds: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) millis: Option<Int>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) micros: Option<Int>,
}

/// ```text
/// TSTInfo ::= SEQUENCE  {
///     version                      INTEGER  { v1(1) },
///     policy                       TSAPolicyId,
///     messageImprint               MessageImprint,
///     serialNumber                 INTEGER,
///     genTime                      GeneralizedTime,
///     accuracy                     Accuracy                 OPTIONAL,
///     ordering                     BOOLEAN             DEFAULT FALSE,
///     nonce                        INTEGER                  OPTIONAL,
///     tsa                          [0] GeneralName          OPTIONAL,
///     extensions                   [1] IMPLICIT Extensions   OPTIONAL  }
/// ```
///
/// `genTime` is kept as the tagged value (see [`gen_time`]).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TstInfo {
    pub(crate) version: TstVersion,
    pub(crate) policy: ObjectIdentifier,
    pub(crate) message_imprint: MessageImprint,
    pub(crate) serial_number: Int,
    pub(crate) gen_time: Any,
    #[asn1(optional = "true")]
    pub(crate) accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    pub(crate) ordering: bool,
    #[asn1(optional = "true")]
    pub(crate) nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub(crate) tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) extensions: Option<Extensions>,
}

/// ```text
/// PKIStatusInfo ::= SEQUENCE {
///     status        PKIStatus,
///     statusString  PKIFreeText     OPTIONAL,
///     failInfo      PKIFailureInfo  OPTIONAL  }
/// PKIFreeText ::= SEQUENCE SIZE (1..MAX) OF UTF8String
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct PkiStatusInfo<'a> {
    pub(crate) status: Int,
    #[asn1(optional = "true")]
    pub(crate) status_string: Option<Vec<Utf8StringRef<'a>>>,
    #[asn1(optional = "true")]
    pub(crate) fail_info: Option<BitString>,
}

/// ```text
/// TimeStampResp ::= SEQUENCE  {
///     status                  PKIStatusInfo,
///     timeStampToken          TimeStampToken     OPTIONAL  }
/// ```
///
/// Sigstore's protobuf specs say a bundle's `signedTimestamp` is this whole response, and
/// cosign's legacy annotation holds one too; `openssl ts -reply -token_out` and other tools give
/// the bare token. Both are read.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TimeStampResp<'a> {
    pub(crate) status: PkiStatusInfo<'a>,
    #[asn1(optional = "true")]
    pub(crate) time_stamp_token: Option<ContentInfo>,
}

/// ```text
/// TimeStampReq ::= SEQUENCE  {
///    version                      INTEGER  { v1(1) },
///    messageImprint               MessageImprint,
///    reqPolicy                    TSAPolicyId              OPTIONAL,
///    nonce                        INTEGER                  OPTIONAL,
///    certReq                      BOOLEAN                  DEFAULT FALSE,
///    extensions               [0] IMPLICIT Extensions      OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TimeStampReq {
    pub(crate) version: TstVersion,
    pub(crate) message_imprint: MessageImprint,
    #[asn1(optional = "true")]
    pub(crate) req_policy: Option<ObjectIdentifier>,
    #[asn1(optional = "true")]
    pub(crate) nonce: Option<Int>,
    #[asn1(default = "Default::default")]
    pub(crate) cert_req: bool,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(crate) extensions: Option<Extensions>,
}

/// Why a `genTime` could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GenTimeError(pub(crate) String);

/// Reads `genTime`: a GeneralizedTime `YYYYMMDDhhmmss[.s...]Z` (RFC 3161 section 2.4.2: UTC,
/// seconds always present, a fraction optional, without trailing zeros). The whole seconds go
/// through `der`'s RFC 5280 GeneralizedTime decoder; only the fraction is split off here, and
/// it is kept (to the nanosecond) so that a time half a second after a certificate expired is
/// not rounded into its validity.
pub(crate) fn gen_time(value: &Any) -> Result<SystemTime, GenTimeError> {
    if value.tag() != Tag::GeneralizedTime {
        return Err(GenTimeError(format!(
            "expected a GeneralizedTime, found {}",
            value.tag()
        )));
    }
    let text = value.value();
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        None => (text.to_vec(), None),
        Some(dot) => {
            let (head, tail) = text.split_at(dot);
            // `tail` is ".digits Z".
            let digits = tail
                .get(1..tail.len().saturating_sub(1))
                .filter(|d| !d.is_empty() && d.len() <= 9 && d.iter().all(u8::is_ascii_digit))
                .filter(|_| tail.last() == Some(&b'Z'))
                .ok_or_else(|| GenTimeError("malformed fractional seconds".into()))?;
            if digits.last() == Some(&b'0') {
                return Err(GenTimeError(
                    "fractional seconds with a trailing zero (not DER)".into(),
                ));
            }
            let mut whole = head.to_vec();
            whole.push(b'Z');
            (whole, Some(digits))
        }
    };
    let seconds = AnyRef::new(Tag::GeneralizedTime, &whole)
        .and_then(|any| any.decode_as::<GeneralizedTime>())
        .map_err(|e| GenTimeError(e.to_string()))?;
    let mut nanos: u32 = 0;
    if let Some(digits) = fraction {
        for i in 0..9 {
            let digit = digits.get(i).map_or(0, |d| u32::from(d - b'0'));
            nanos = nanos * 10 + digit;
        }
    }
    Ok(seconds.to_system_time() + Duration::from_nanos(u64::from(nanos)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn time(text: &str) -> Result<SystemTime, GenTimeError> {
        gen_time(&Any::new(Tag::GeneralizedTime, text.as_bytes()).unwrap())
    }

    #[test]
    fn whole_seconds_and_fractions_are_read() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(time("20231114221320Z").unwrap(), base);
        assert_eq!(
            time("20231114221320.5Z").unwrap(),
            base + Duration::from_millis(500)
        );
        assert_eq!(
            time("20231114221320.123456789Z").unwrap(),
            base + Duration::from_nanos(123_456_789)
        );
    }

    #[test]
    fn malformed_times_are_refused() {
        for bad in [
            "20231114221320",
            "20231114221320.Z",
            "20231114221320.50Z",
            "20231114221320.1234567891Z",
            "20231114221320.5",
            "20231114221320.x5Z",
            "2023111422132Z",
            "20231314221320Z",
            "20231114221320+0100",
            "",
            ".",
        ] {
            assert!(time(bad).is_err(), "{bad:?} was accepted");
        }
        let utc = Any::new(Tag::UtcTime, b"231114221320Z".as_slice()).unwrap();
        assert!(gen_time(&utc).is_err());
    }
}
