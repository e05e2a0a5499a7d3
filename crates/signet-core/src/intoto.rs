//! in-toto Statement v1 (and v0.1 for reading): the statement an attestation makes about an
//! image digest.
//!
//! Spec: <https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::dsse::{DsseError, Envelope};
use crate::keys::PublicKey;
use crate::verified::Verified;

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// `_type` of a v1 statement.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of a v0.1 statement, still written by older tools; read, never written.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// The predicate type cosign v3 uses for a plain signature in the bundle format.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The predicate type of signet's withdrawal statement (`signet withdraw`): predicate
/// `{"withdrawn": "sha256:<referrer manifest digest>", "reason": "…"}`. It withdraws the
/// named attestation for every attestor whose key signed the withdrawal, and is never itself
/// evidence for anything.
pub const WITHDRAWAL_PREDICATE: &str = "https://signet.dev/withdrawal/v1";

/// The predicate type URI of one of cosign's `--type` short names (`slsaprovenance`,
/// `slsaprovenance1`, `link`, `spdx`, `spdxjson`, `cyclonedx`, `vuln`, `openvex`, `custom`).
pub fn cosign_predicate_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "link" => "https://in-toto.io/Link/v1",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "openvex" => "https://openvex.dev/ns",
        "custom" => COSIGN_CUSTOM_PREDICATE,
        _ => return None,
    })
}

/// The predicate type cosign's `custom` name stands for; a predicate file of that type that is
/// not JSON is carried as text, as cosign does.
pub const COSIGN_CUSTOM_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/v1";

/// A `--type` argument: one of cosign's names, or any URI.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error(
    "unknown predicate type {0:?}: use slsaprovenance, slsaprovenance1, link, spdx, spdxjson, \
     cyclonedx, vuln, openvex, custom, or a URI"
)]
pub struct UnknownPredicateType(pub String);

/// The predicate type URI for `name`: one of cosign's names (see [`cosign_predicate_type`]) or
/// a URI, taken as it is.
pub fn predicate_type(name: &str) -> Result<String, UnknownPredicateType> {
    match cosign_predicate_type(name) {
        Some(uri) => Ok(uri.to_string()),
        None if name.contains("://") => Ok(name.to_string()),
        None => Err(UnknownPredicateType(name.to_string())),
    }
}

/// The predicate of an attestation of `predicate_type` from the bytes of a predicate file:
/// JSON, except that a `custom` predicate that is not JSON becomes `{"Data": "<text>"}`, as
/// cosign writes it.
pub fn predicate_from_file(
    predicate_type: &str,
    bytes: &[u8],
) -> Result<serde_json::Value, serde_json::Error> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) if predicate_type == COSIGN_CUSTOM_PREDICATE => {
            Ok(serde_json::json!({ "Data": String::from_utf8_lossy(bytes) }))
        }
        Err(e) => Err(e),
    }
}

/// Why a DSSE envelope did not yield a verified statement about the expected digest.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AttestationError {
    /// The envelope is malformed or no signature verified.
    #[error(transparent)]
    Dsse(#[from] DsseError),
    /// The envelope verified but does not hold an in-toto statement.
    #[error("DSSE payload type is \"{found}\", expected {}", PAYLOAD_TYPE)]
    NotInToto {
        /// The payload type found.
        found: String,
    },
    /// The statement is malformed or about another digest.
    #[error(transparent)]
    Statement(#[from] StatementError),
}

/// Verifies `envelope` under `keys`, parses the in-toto statement it carries from the signed
/// bytes, and checks that the statement is about `subject`. The one place where a DSSE
/// attestation (a bundle's, or a legacy `.att` layer's) becomes a proof.
pub fn verify_envelope(
    envelope: &Envelope,
    keys: &[PublicKey],
    subject: &Digest,
) -> Result<Verified<Statement>, AttestationError> {
    let payload = envelope.verify(keys)?;
    if payload.value().payload_type != PAYLOAD_TYPE {
        return Err(AttestationError::NotInToto {
            found: payload.value().payload_type.clone(),
        });
    }
    let statement = Statement::parse(&payload.value().bytes)?;
    statement.check_subject(subject)?;
    Ok(payload.map(|_| statement))
}

/// Why a statement was rejected.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum StatementError {
    /// Not the JSON shape of a statement.
    #[error("malformed in-toto statement: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// A `_type` other than v1 or v0.1.
    #[error("unsupported in-toto statement type \"{found}\"")]
    UnsupportedType {
        /// The `_type` found.
        found: String,
    },
    /// None of the subjects names the expected digest.
    #[error("statement is about {}, not {expected}", found.join(", "))]
    SubjectMismatch {
        /// The digest the caller verifies.
        expected: Digest,
        /// The subject digests the statement names, as `alg:hex`.
        found: Vec<String>,
    },
}

/// One subject of a statement: a name and its digests by algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The artifact's name (for images, the repository).
    #[serde(default)]
    pub name: String,
    /// Digests by algorithm name, hex values.
    pub digest: BTreeMap<String, String>,
    /// The ResourceDescriptor's `annotations` (in-toto v1): where signet writes its signing
    /// time ([`crate::signed_time::SIGNED_AT_ANNOTATION`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, serde_json::Value>,
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The statement schema.
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// What the statement is about.
    pub subject: Vec<Subject>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate itself, uninterpreted here.
    #[serde(default)]
    pub predicate: serde_json::Value,
}

impl Statement {
    /// A v1 statement about one digest.
    pub fn new(
        subject_name: &str,
        digest: &Digest,
        predicate_type: &str,
        predicate: serde_json::Value,
    ) -> Statement {
        Statement {
            statement_type: STATEMENT_V1.to_string(),
            subject: vec![Subject {
                name: subject_name.to_string(),
                digest: BTreeMap::from([(
                    digest.algorithm().as_str().to_string(),
                    digest.hex().to_string(),
                )]),
                annotations: BTreeMap::new(),
            }],
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    /// Writes `at` as the signing time on every subject
    /// ([`crate::signed_time::SIGNED_AT_ANNOTATION`]).
    pub fn set_signed_at(&mut self, at: std::time::SystemTime) {
        let text = crate::signed_time::format(at);
        for subject in &mut self.subject {
            subject.annotations.insert(
                crate::signed_time::SIGNED_AT_ANNOTATION.to_string(),
                serde_json::Value::String(text.clone()),
            );
        }
    }

    /// Parses a statement and checks its `_type`.
    pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
        let statement: Statement =
            serde_json::from_slice(bytes).map_err(|e| StatementError::Malformed {
                reason: e.to_string(),
            })?;
        if statement.statement_type != STATEMENT_V1 && statement.statement_type != STATEMENT_V01 {
            return Err(StatementError::UnsupportedType {
                found: statement.statement_type,
            });
        }
        Ok(statement)
    }

    /// The statement as compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // A Value tree and strings always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Checks that one of the subjects names `expected` (same algorithm, same hex).
    pub fn check_subject(&self, expected: &Digest) -> Result<(), StatementError> {
        let algorithm = expected.algorithm().as_str();
        let matches = self.subject.iter().any(|s| {
            s.digest
                .get(algorithm)
                .is_some_and(|hex| hex.eq_ignore_ascii_case(expected.hex()))
        });
        if matches {
            return Ok(());
        }
        Err(StatementError::SubjectMismatch {
            expected: expected.clone(),
            found: self
                .subject
                .iter()
                .flat_map(|s| s.digest.iter().map(|(alg, hex)| format!("{alg}:{hex}")))
                .collect(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Found by `scripts/fuzz.sh` (target `intoto`): `1.5222…2` (a hundred digits) was read
    /// as a float one unit in the last place off, so a statement written back differed from
    /// the one read, and a policy condition comparing that number would have compared another
    /// one. serde_json's `float_roundtrip` reads numbers exactly.
    #[test]
    fn predicate_numbers_are_read_exactly() {
        let json = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"r/app","digest":{{"sha256":"{}"}}}}],"predicateType":"https://example.com/t","predicate":{{"n":1.5{}}}}}"#,
            "a".repeat(64),
            "2".repeat(100)
        );
        let statement = Statement::parse(json.as_bytes()).unwrap();
        assert_eq!(
            statement.predicate["n"].as_f64(),
            Some(1.522_222_222_222_222_1)
        );
        assert_eq!(Statement::parse(&statement.to_json()).unwrap(), statement);
    }

    #[test]
    fn reads_v01_and_v1_and_checks_subject() {
        let d = Digest::sha256_of(b"image");
        for ty in [STATEMENT_V1, STATEMENT_V01] {
            let json = format!(
                r#"{{"_type":"{ty}","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}],"predicateType":"p","predicate":{{}}}}"#,
                d.hex()
            );
            let st = Statement::parse(json.as_bytes()).unwrap();
            st.check_subject(&d).unwrap();
        }
        let other = Digest::sha256_of(b"other");
        let st = Statement::new("x", &d, "p", serde_json::json!({}));
        let err = st.check_subject(&other).unwrap_err();
        assert!(err.to_string().contains(d.hex()));
    }

    #[test]
    fn rejects_unknown_type() {
        let json = br#"{"_type":"https://example.com/x","subject":[],"predicateType":"p"}"#;
        assert!(matches!(
            Statement::parse(json),
            Err(StatementError::UnsupportedType { .. })
        ));
    }
}
